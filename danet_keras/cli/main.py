"""Entry point of `danet-keras`.

Each subcommand lives in its own module of this package and defines
`register(subparsers)`, which adds its parser and sets `func` to a handler
taking the parsed arguments. Handlers import TensorFlow lazily so that
`danet-keras --help` answers at once; `main` imports it quietly (see
`danet_keras.utils.native_log`) before running a handler.
"""

import argparse
import importlib
import sys

from danet_keras.cli.deprecated import upgrade_arguments
from danet_keras.utils.native_log import import_tensorflow_quietly
from danet_keras.version import __version__

# Modules of danet_keras.cli, in the order `--help` lists their commands.
COMMAND_MODULES = (
    "info",
    "demo",
    "data",
    "train",
    "evaluate",
    "benchmark",
    "export",
    "predict",
    "convert",
)


class UsageError(ValueError):
    """A command line that does not parse (`main` prints it as one line, exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as `UsageError` (subcommand parsers inherit it)."""

    def error(self, message):
        raise UsageError(f"{message} ({self.prog} --help shows the usage)")


def build_parser():
    """The `danet-keras` parser, with the subcommands of `COMMAND_MODULES`."""
    parser = _Parser(
        prog="danet-keras",
        description="DANet (Dual Attention Network for Scene Segmentation) in Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"danet-keras {__version__}")
    parser.add_argument(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show the full traceback when a command fails",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"danet_keras.cli.{module_name}").register(subparsers)
    return parser


def _command(argv):
    """The subcommand named in `argv` (for messages), else None."""
    return next((token for token in argv if not token.startswith("-")), None)


def main(argv=None):
    argv = upgrade_arguments(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        prefix = " ".join(filter(None, ("danet-keras", _command(argv))))
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return 2
    if getattr(args, "needs_tensorflow", True):
        import_tensorflow_quietly()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"danet-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        # One line, no traceback: bad input (a value, a path, a file system that says
        # no) exits 2, anything else 1.
        bad_input = isinstance(error, (ValueError, OSError))
        kind = "" if bad_input else f"{type(error).__name__}: "
        message = " ".join(str(error).split()) or type(error).__name__
        hint = "" if bad_input else " (--debug shows the traceback)"
        print(f"danet-keras {args.command}: error: {kind}{message}{hint}", file=sys.stderr)
        return 2 if bad_input else 1


if __name__ == "__main__":
    sys.exit(main())
