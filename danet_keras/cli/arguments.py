"""Argument conventions shared by every subcommand.

- One output flag: `-o/--output` (a file or a folder, as the command writes).
- One size syntax: `N` (square) or `HEIGHTxWIDTH` (`512x1024`), parsed by `parse_size`.
- Booleans are `--flag/--no-flag` (`argparse.BooleanOptionalAction`).

`tests/cli/test_convention.py` walks every subcommand's parser and checks them. The
spellings of the previous release are translated by `cli/deprecated.py`.
"""

import argparse
import os

from danet_keras.data.registry import DATASET_REGISTRY, TFDS_PREFIX, reader_names

OUTPUT_FLAGS = ("-o", "--output")
SIZE_METAVAR = "N|HxW"
# What `parse_optional_size` returns for "none": no limit.
NO_LIMIT = "none"


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


def add_output_argument(parser, help_text, **kwargs):
    """Adds `-o/--output`, the one name of what a subcommand writes."""
    parser.add_argument(*OUTPUT_FLAGS, dest="output", metavar="PATH", help=help_text, **kwargs)


def add_boolean_argument(parser, flag, help_text=None, default=None):
    """Adds `--flag/--no-flag`; `default=None` lets the library's own default apply."""
    parser.add_argument(
        flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
    )


def parse_size(text):
    """'512' -> (512, 512), '512x1024' -> (512, 1024) (HEIGHTxWIDTH).

    Raises:
        argparse.ArgumentTypeError: naming the expected form (argparse shows
            it as the flag's error; called directly, `cli.main` prints it as
            one line like any other bad input).
    """
    parts = str(text).lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isascii() and p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"a size is N or HEIGHTxWIDTH, e.g. 512 or 512x1024; got {text!r}"
        )
    height, width = int(parts[0]), int(parts[-1])
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"a size must be positive, got {text!r}")
    return height, width


def parse_optional_size(text):
    """`parse_size`, or `NO_LIMIT` for 'none'."""
    return NO_LIMIT if str(text).lower() == NO_LIMIT else parse_size(text)


def add_size_argument(parser, flag, help_text, optional=False, **kwargs):
    """Adds a size flag parsed by `parse_size` (`optional`: also 'none', `NO_LIMIT`)."""
    metavar = f"{SIZE_METAVAR}|none" if optional else SIZE_METAVAR
    parse = parse_optional_size if optional else parse_size
    parser.add_argument(flag, type=parse, metavar=metavar, help=help_text, **kwargs)


def parse_class_names(text):
    """`--class-names`: a text file of names, one a line, or a comma-separated list.

    Returns:
        A tuple of names.
    """
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as file:
            names = [line.strip() for line in file]
    else:
        names = text.split(",")
    names = tuple(name.strip() for name in names if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"no class names in {text!r}")
    return names


def add_class_names_argument(parser):
    """Adds `--class-names FILE|LIST`, the classes of a `folder` dataset."""
    parser.add_argument(
        "--class-names",
        type=parse_class_names,
        metavar="FILE|LIST",
        help="the classes of a `folder` dataset, train id order: a text file with one name a "
        "line, or names separated by commas (road,car,sky)",
    )


def class_names_options(dataset, class_names):
    """The reader's keyword arguments for `--class-names` (none when it was not given).

    Raises:
        ValueError: for a dataset that has its own class table.
    """
    if class_names is None:
        return {}
    entry = DATASET_REGISTRY.get(dataset)
    if entry is None or entry.class_names is not None or entry.classes_of is not None:
        raise ValueError(
            f"--class-names is for a dataset whose classes you name (folder); {dataset} has "
            "its own."
        )
    return {"class_names": class_names}
