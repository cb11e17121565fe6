"""Every subcommand follows one convention (`danet_keras/cli/arguments.py`).

One output flag (`-o/--output`), one size syntax (`N` or `HEIGHTxWIDTH`, parsed by
`parse_size`), booleans as `--flag/--no-flag`. The previous release's spellings live only
in `cli/deprecated.py`, which rewrites them before parsing.
"""

import argparse
import importlib
import re

import pytest

from danet_keras.cli import deprecated
from danet_keras.cli.arguments import NO_LIMIT, parse_optional_size, parse_size
from danet_keras.cli.main import COMMAND_MODULES, build_parser

# The commands that write files, and so take -o/--output (make-demo-data takes its folder
# as its one positional argument).
WRITERS = ("demo", "train", "evaluate", "export", "predict", "convert")
# Options named like a size: they all take the one size syntax.
SIZE_OPTION = re.compile(r"^--(size|stride|(crop|input|max-image|verify)-size)$")
# Spellings of the previous release, and ones the convention rules out.
FORBIDDEN = ("--out", "--output-dir", "--out-dir", "--sliding-window")


def subcommand_parsers():
    """{command name: its parser}, each registered by its module as `cli/main.py` does."""
    parsers = {}
    for module_name in COMMAND_MODULES:
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"danet_keras.cli.{module_name}").register(subparsers)
        parsers.update(subparsers.choices)
    return parsers


PARSERS = subcommand_parsers()


def options(parser):
    """The optional arguments' actions of a parser (help aside)."""
    return [
        action
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]


def test_every_command_is_walked():
    assert sorted(PARSERS) == sorted(
        ["info", "demo", "make-demo-data", "train", "evaluate", "benchmark", "export",
         "predict", "convert"]
    )  # fmt: skip


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_one_output_flag(command):
    names = {name for action in options(PARSERS[command]) for name in action.option_strings}
    assert not names & set(FORBIDDEN), names & set(FORBIDDEN)
    # Any flag about where output goes is -o/--output (--outputs and --output-stride are
    # what a model returns and computes, not a path).
    allowed = {"--output", "--outputs", "--output-stride"}
    assert {name for name in names if name.startswith("--out")} <= allowed
    if command in WRITERS:
        output = next(a for a in options(PARSERS[command]) if "--output" in a.option_strings)
        assert output.option_strings == ["-o", "--output"] and output.dest == "output"


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_booleans_are_flag_and_no_flag(command):
    for action in options(PARSERS[command]):
        if action.nargs == 0:
            assert isinstance(action, argparse.BooleanOptionalAction), action.option_strings
            assert len(action.option_strings) == 2, action.option_strings
        # No boolean spelled as a value.
        assert not action.choices or not {"true", "false"} & set(action.choices)


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_sizes_take_one_syntax(command):
    for action in options(PARSERS[command]):
        named_like_a_size = any(SIZE_OPTION.match(name) for name in action.option_strings)
        parsed_as_a_size = action.type in (parse_size, parse_optional_size)
        assert named_like_a_size == parsed_as_a_size, action.option_strings
        if parsed_as_a_size:
            assert action.nargs is None and "HxW" in action.metavar
        # Two numbers in a row are a point (--attention-point Y X), never a size.
        if action.nargs == 2:
            assert action.option_strings == ["--attention-point"]


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_help_names_no_old_spelling(command):
    for action in options(PARSERS[command]):
        for old in FORBIDDEN + ("true/false", "HEIGHT WIDTH"):
            assert old + " " not in f"{action.help} ", (action.option_strings, old)


def test_size_syntax():
    assert parse_size("512") == (512, 512)
    assert parse_size("512x1024") == (512, 1024)
    assert parse_size("512X1024") == (512, 1024)
    assert parse_optional_size("none") == NO_LIMIT
    for bad in ("big", "512 1024", "512x", "x512", "-1x4", "0x4", "1x2x3", "5.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_the_deprecated_spellings_lead_to_todays_flags():
    for command, renamed in deprecated.RENAMED.items():
        names = {n for action in options(PARSERS[command]) for n in action.option_strings}
        assert set(renamed.values()) <= names and not set(renamed) & names, command
    for command, flags in deprecated.TWO_NUMBER_SIZES.items():
        sizes = [a for a in options(PARSERS[command]) if set(a.option_strings) & set(flags)]
        assert len(sizes) == len(flags)
        assert all(a.type in (parse_size, parse_optional_size) for a in sizes)
    for command, flags in deprecated.VALUED_BOOLEANS.items():
        booleans = [a for a in options(PARSERS[command]) if set(a.option_strings) & set(flags)]
        assert len(booleans) == len(flags)
        assert all(isinstance(a, argparse.BooleanOptionalAction) for a in booleans)


def test_the_main_parser_holds_the_same_commands():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == sorted(PARSERS)
