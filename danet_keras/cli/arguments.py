"""Argument parsing shared by the subcommands."""

from danet_keras.data.registry import TFDS_PREFIX, reader_names


class DatasetNames:
    """The `--dataset` choices: the dataset registry's reader names, and any "tfds:<name>".

    argparse checks a value with `in` and lists the choices by iterating them.
    """

    def __init__(self):
        self.names = reader_names()

    def __contains__(self, value):
        return value in self.names or (
            isinstance(value, str) and value.startswith(TFDS_PREFIX) and value != TFDS_PREFIX
        )

    def __iter__(self):
        return iter([*self.names, f"{TFDS_PREFIX}<name>"])


def add_dataset_argument(parser, help_text, **kwargs):
    """Adds `--dataset`, one of `DatasetNames`, to a subcommand's parser."""
    parser.add_argument(
        "--dataset", choices=DatasetNames(), metavar="NAME", help=help_text, **kwargs
    )


def parse_size(text):
    """'512x1024' -> (512, 1024); a ValueError naming the expected form otherwise."""
    try:
        height, width = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"a size must look like 512x1024 (HEIGHTxWIDTH), got {text!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"a size must be positive, got {text!r}")
    return height, width
