"""Files that appear whole or not at all, and stay so after a crash of the machine.

Every file this project writes (checkpoints, backups, exports, converted
weights, metrics, pictures) is written under a temporary name, flushed to the
disk (`fsync`), renamed into place, and the rename itself made durable by an
`fsync` of the directory. A process killed while writing (SIGKILL,
preemption) leaves the previous file, or none, never half of one; after a
power loss, a file whose writer returned is on the disk whole (as far as the
file system and the disk honour `fsync`: a disk cache that lies to the
kernel, or a network file system without close-to-open consistency, is out of
any program's reach).

The temporary names start with a dot and contain `.partial`, with the host
and process that wrote them (`.NAME.<host>-<pid>-<random>.partial<suffix>`),
so that `remove_partials` can tell what a dead writer left behind from what a
running one is still writing.

    with atomic_path("runs/best.keras") as temporary:
        model.save(temporary)          # renamed to runs/best.keras on success
    write_json("runs/best.json", {"value": 0.71})

These helpers write where they are told; which paths a writer may take (never
a file it did not write) is `danet_keras.utils.output_paths`' job.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import uuid

import numpy as np
from PIL import Image

PARTIAL_MARK = ".partial"
# Suffixes that libraries check (Keras: `.keras`, `.weights.h5`); kept on temporary names.
_COMPOUND_SUFFIXES = (".weights.h5", ".weights.json")
_PARTIAL_PATTERN = re.compile(
    r"^\..*\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}" + re.escape(PARTIAL_MARK)
)


def _split_suffix(name):
    for suffix in _COMPOUND_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return os.path.splitext(name)


def _host_token():
    # Host names can hold any character; 8 hex digits name the host in a file name.
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def partial_name(path):
    """A temporary name beside `path`: `.NAME.<host>-<pid>-<random>.partial<suffix>`."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    stem, suffix = _split_suffix(name)
    token = f"{_host_token()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.path.join(directory, f".{stem}.{token}{PARTIAL_MARK}{suffix}")


def is_partial(name):
    """True for the name of a temporary file or directory of these helpers."""
    name = os.path.basename(os.fspath(name))
    return name.startswith(".") and PARTIAL_MARK in name


def _process_is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def left_by_dead_writer(name):
    """True when `name` is a temporary name whose writer can be proven gone.

    Proof: the name carries this host and the id of a process that is this
    one (whose own leftovers these are: its writes are sequential) or no
    longer runs. A name of another host, of a live process (even one that only
    reuses the id), or of an older format is never claimed.
    """
    match = _PARTIAL_PATTERN.match(os.path.basename(os.fspath(name)))
    if match is None or match["host"] != _host_token():
        return False
    pid = int(match["pid"])
    return pid == os.getpid() or not _process_is_alive(pid)


def remove_tree(path):
    """Removes a file, link or directory tree (nothing if absent)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def fsync_path(path):
    """Flushes a file's data, or a directory's entries, to the disk."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else os.O_RDONLY
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    except OSError:
        if not os.path.isdir(path):
            raise
        # Some file systems cannot fsync a directory (EINVAL); their renames are
        # as durable as they make them.
    finally:
        os.close(descriptor)


def fsync_tree(path):
    """`fsync_path` for every file and directory under `path`, innermost first."""
    if os.path.isdir(path) and not os.path.islink(path):
        for root, directories, files in os.walk(path, topdown=False):
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    fsync_path(os.path.join(root, name))
            fsync_path(root)
    else:
        fsync_path(path)


def durable_replace(source, destination):
    """`os.replace` once `source` is on the disk, then made durable in the directory."""
    fsync_tree(source)
    os.replace(source, destination)
    fsync_path(os.path.dirname(os.path.abspath(destination)))


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary file path; on success it is made durable as `path`, on failure removed.

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
        durable_replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            remove_tree(temporary)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory; on success it takes the place of `path`, durably.

    An existing `path` is first renamed aside, then removed once the new
    directory is in place: a crash in between leaves the old directory under
    a temporary name of this process (which `remove_partials` clears once the
    process is gone) and `path` absent. Whether `path` may be replaced is the
    caller's decision (`danet_keras.utils.output_paths`).

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
        durable_replace(temporary, path)
        if old:
            remove_tree(old)
    finally:
        if os.path.lexists(temporary):
            remove_tree(temporary)


@contextlib.contextmanager
def scratch_directory(path):
    """Yields a new, empty directory beside `path`, named as a temporary of it; removed on exit.

    For files that are never kept (a download before its conversion): on
    success or failure nothing stays; what a killed process left is cleared by
    `remove_dead_partials_of(path)`.

    Args:
        path: the path the work is for (its folder is created).

    Yields:
        The scratch directory.
    """
    temporary = partial_name(path)
    os.makedirs(temporary)
    try:
        yield temporary
    finally:
        remove_tree(temporary)


def write_bytes(path, data):
    """Writes `data` to `path` atomically and durably."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)
    return path


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically and durably."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, value, **options):
    """Writes `value` as JSON (indent 2 unless given) to `path` atomically and durably."""
    options.setdefault("indent", 2)
    return write_text(path, json.dumps(value, **options))


def remove_dead_partials_of(path):
    """Removes the temporary files and folders that dead writers of `path` left beside it.

    Returns:
        The paths removed.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        return []
    stem, suffix = _split_suffix(name)
    own = re.compile(
        rf"^\.{re.escape(stem)}\.[0-9a-f]{{8}}-[0-9]+-[0-9a-f]{{8}}"
        rf"{re.escape(PARTIAL_MARK)}{re.escape(suffix)}$"
    )
    removed = []
    for entry in os.listdir(folder):
        if own.match(entry) and left_by_dead_writer(entry):
            remove_tree(os.path.join(folder, entry))
            removed.append(os.path.join(folder, entry))
    return removed


def remove_partials(directory, skip=None):
    """Removes what dead writers left in `directory`: their temporary files and directories.

    Only names that `left_by_dead_writer` proves are removed: a temporary
    file of a writer that still runs (another training run, an export in
    progress) is left alone, and so is anything else.

    Args:
        directory: the folder to clear, with its subfolders.
        skip: None, or a function of a subfolder's path that is True for a
            folder not to enter (e.g. another run's output folder).

    Returns:
        The paths removed.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for root, dirs, files in os.walk(directory):
        for name in list(dirs) + files:
            path = os.path.join(root, name)
            if is_partial(name) and left_by_dead_writer(name):
                remove_tree(path)
                removed.append(path)
        dirs[:] = [
            d for d in dirs if not is_partial(d) and not (skip and skip(os.path.join(root, d)))
        ]
    return removed


def save_png(path, array, palette=None):
    """Writes a uint8 array as a PNG atomically: RGB (H, W, 3), grey (H, W), or palette indices.

    Args:
        path: the `.png` file.
        array: (H, W, 3) or (H, W) uint8.
        palette: None, or (K, 3) uint8 colours: writes a palette ("P" mode) PNG
            whose pixel values are the indices.
    """
    array = np.asarray(array)
    if palette is None:
        image = Image.fromarray(array)
    else:
        image = Image.fromarray(array.astype(np.uint8), mode="P")
        image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
    return path
