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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="danet-keras",
        description="DANet (Dual Attention Network for Scene Segmentation) in Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"danet-keras {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"danet_keras.cli.{module_name}").register(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
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
