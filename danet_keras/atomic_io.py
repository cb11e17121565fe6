"""Files that appear whole or not at all: written under a temporary name, then renamed.

A process killed while writing (SIGKILL, preemption, power loss) leaves the
previous file, or none, never half of one: every file this project writes
(checkpoints, backups, exports, converted weights, metrics, pictures) goes
through these helpers. The temporary names start with a dot and contain
`.partial`, so `remove_partials` can clear what a killed writer left behind.

    with atomic_path("runs/best.keras") as temporary:
        model.save(temporary)          # renamed to runs/best.keras on success
    write_json("runs/best.json", {"value": 0.71})
"""

import contextlib
import json
import os
import shutil
import uuid

PARTIAL_MARK = ".partial"
# Suffixes that libraries check (Keras: `.keras`, `.weights.h5`); kept on temporary names.
_COMPOUND_SUFFIXES = (".weights.h5", ".weights.json")


def _split_suffix(name):
    for suffix in _COMPOUND_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return os.path.splitext(name)


def partial_name(path):
    """A temporary name beside `path`: `.NAME.<random>.partial<suffix>`."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    stem, suffix = _split_suffix(name)
    return os.path.join(directory, f".{stem}.{uuid.uuid4().hex[:8]}{PARTIAL_MARK}{suffix}")


def is_partial(name):
    """True for the name of a temporary file or directory of these helpers."""
    name = os.path.basename(os.fspath(name))
    return name.startswith(".") and PARTIAL_MARK in name


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary file path; on success it is renamed to `path`, on failure removed.

    Args:
        path: the file to write. Its directory is created.

    Yields:
        The temporary path to write to (same directory and suffix).
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = partial_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            _remove(temporary)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory; on success it takes the place of `path`.

    An existing `path` is first renamed aside, then removed once the new
    directory is in place: a crash in between leaves the old directory under
    a `.partial` name, which `remove_partials` clears, and `path` absent.

    Args:
        path: the directory to write (e.g. a SavedModel or a preset).

    Yields:
        The temporary directory, created empty, to fill.
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = partial_name(path)
    os.makedirs(temporary)
    try:
        yield temporary
        old = None
        if os.path.lexists(path):
            old = partial_name(path)
            os.replace(path, old)
        os.replace(temporary, path)
        if old:
            _remove(old)
    finally:
        if os.path.lexists(temporary):
            _remove(temporary)


def write_bytes(path, data):
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)
    return path


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, value, **options):
    """Writes `value` as JSON (indent 2 unless given) to `path` atomically."""
    options.setdefault("indent", 2)
    return write_text(path, json.dumps(value, **options))


def remove_partials(directory, recursive=True):
    """Removes what killed writers left in `directory`: the `.partial` files and directories.

    Returns:
        The paths removed.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for root, dirs, files in os.walk(directory):
        for name in list(dirs) + files:
            if is_partial(name):
                _remove(os.path.join(root, name))
                removed.append(os.path.join(root, name))
        dirs[:] = [d for d in dirs if not is_partial(d)]
        if not recursive:
            break
    return removed


def save_png(path, array, palette=None):
    """Writes a uint8 array as a PNG atomically: RGB (H, W, 3), grey (H, W), or palette indices.

    Args:
        path: the `.png` file.
        array: (H, W, 3) or (H, W) uint8.
        palette: None, or (K, 3) uint8 colours: writes a palette ("P" mode) PNG
            whose pixel values are the indices.
    """
    import numpy as np
    from PIL import Image

    array = np.asarray(array)
    if palette is None:
        image = Image.fromarray(array)
    else:
        image = Image.fromarray(array.astype(np.uint8), mode="P")
        image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
    return path
