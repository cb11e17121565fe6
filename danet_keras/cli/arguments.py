"""Argument parsing shared by the subcommands."""


def parse_size(text):
    """'512x1024' -> (512, 1024); a ValueError naming the expected form otherwise."""
    try:
        height, width = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"a size must look like 512x1024 (HEIGHTxWIDTH), got {text!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"a size must be positive, got {text!r}")
    return height, width
