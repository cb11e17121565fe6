"""The previous release's command-line spellings, still accepted for this release.

`upgrade_arguments` rewrites them into today's convention (`cli/arguments.py`) before
parsing, and says so in one line each on stderr, so that the parsers themselves hold
only the convention. Delete this module, and its call in `cli/main.py`, in the next
release.
"""

import sys

# Flags renamed: command -> {old: new}.
RENAMED = {
    "demo": {"--output-dir": "--output"},
    "train": {"--output-dir": "--output"},
    "evaluate": {"--output-dir": "--output"},
    "export": {"--out": "--output"},
    "predict": {"--out": "--output"},
    # The precision is a policy name, as in `export --dtype-policy`; `--mixed-precision`
    # is train's boolean.
    "benchmark": {"--mixed-precision": "--dtype-policy"},
}
# Sizes that took two numbers, HEIGHT WIDTH: command -> flags (now HEIGHTxWIDTH).
TWO_NUMBER_SIZES = {
    "export": ("--input-size", "--max-image-size"),
    "convert": ("--verify-size",),
    "evaluate": ("--crop-size", "--stride"),
}
# The size that meant "no limit" as two numbers.
NO_LIMIT = {("--max-image-size", "0", "0"): "none"}
# Booleans that took a value, true or false: command -> flags (now --flag/--no-flag).
VALUED_BOOLEANS = {"convert": ("--align-corners", "--aux-head")}
# predict --sliding-window CROP [STRIDE] is now --crop-size CROP [--stride STRIDE].
SLIDING_WINDOW = "--sliding-window"


def _number(token):
    return token.isascii() and token.isdigit()


def _upgrade_option(command, tokens, index):
    """(replacement tokens, tokens consumed, old spelling, new spelling) or None."""
    token = tokens[index]
    name, equals, value = token.partition("=")
    following = tokens[index + 1 : index + 3]
    if name in RENAMED.get(command, {}):
        new = RENAMED[command][name]
        return [new + equals + value], 1, name, new
    if name in TWO_NUMBER_SIZES.get(command, ()) and not equals:
        if len(following) == 2 and all(_number(t) for t in following):
            joined = NO_LIMIT.get((name, *following), "x".join(following))
            return [name, joined], 3, f"{name} {' '.join(following)}", f"{name} {joined}"
    if name in VALUED_BOOLEANS.get(command, ()):
        value = value if equals else (following[0] if following else "")
        if value.lower() in ("true", "false"):
            new = name if value.lower() == "true" else "--no-" + name[2:]
            return [new], 1 if equals else 2, f"{name} {value}", new
    if command == "predict" and name == SLIDING_WINDOW and not equals:
        numbers = []
        for candidate in following:
            if not _number(candidate):
                break
            numbers.append(candidate)
        if numbers:
            new = ["--crop-size", numbers[0]] + (["--stride", numbers[1]] if numbers[1:] else [])
            return new, 1 + len(numbers), f"{name} {' '.join(numbers)}", " ".join(new)
    return None


def upgrade_arguments(argv, stream=None):
    """Today's spelling of a command line that may use the previous release's.

    Args:
        argv: the arguments after the program name.
        stream: where the deprecation lines go (default stderr).

    Returns:
        The rewritten list of arguments.
    """
    argv = list(argv)
    stream = stream or sys.stderr
    # The command is the first word that is not a global option (--debug).
    start = next((i for i, token in enumerate(argv) if not token.startswith("-")), None)
    if start is None:
        return argv
    command = argv[start]
    upgraded, index = argv[: start + 1], start + 1
    while index < len(argv):
        if argv[index] == "--":  # what follows is positional
            upgraded.extend(argv[index:])
            break
        found = _upgrade_option(command, argv, index)
        if found is None:
            upgraded.append(argv[index])
            index += 1
            continue
        tokens, consumed, old, new = found
        print(
            f"danet-keras {command}: `{old}` is deprecated and goes in the next release; "
            f"write `{new}`",
            file=stream,
        )
        upgraded.extend(tokens)
        index += consumed
    return upgraded
