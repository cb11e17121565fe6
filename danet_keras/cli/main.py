"""Entry point of `danet-keras`.

Each subcommand lives in its own module of this package and defines
`register(subparsers)`, which adds its parser and sets `func` to a handler
taking the parsed arguments. Handlers import TensorFlow lazily so that
`danet-keras --help` answers at once; `main` imports it quietly (see
`danet_keras.native_log`) before running a handler.
"""

import argparse
import importlib
import sys

from danet_keras.native_log import import_tensorflow_quietly
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
    except (ValueError, FileNotFoundError) as error:
        # Bad input is reported as one line, not a traceback.
        print(f"danet-keras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
