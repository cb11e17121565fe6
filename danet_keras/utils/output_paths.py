"""Where a writer may write: never over a file or folder that danet-keras did not write.

Every writer of this project that takes a path from the user (the exports,
presets, converted weights, `predict`, `evaluate`, the demo, training) asks
here first, and leaves a marker of what it wrote, so that "written by this
project" is a fact recorded at write time, not a guess from file names:

- A folder artefact (a SavedModel, a preset) holds `.danet-keras.json`:
  its kind and the list of files written into it.
- A file artefact (`.tflite`, `.onnx`, `.keras`, `.weights.h5`, label PNGs,
  reports) is recorded with its kind, size and SHA-256 in the
  `.danet-keras.json` of the folder that holds it.
- A folder that a command owns (a training run, the demo's folder, the demo
  city's files) holds `.danet-keras.json` with its kind; the command writes
  inside it freely and can be run again on it (to resume, or to redo the demo).

The rules, for a path a writer is asked to write:
- a path that does not exist, or an empty folder: written;
- an artefact of the same kind that this project wrote, unchanged since:
  refused unless `overwrite=True` (`--overwrite`), then replaced atomically;
- anything else (a user's file, a folder with other files in it, a file
  changed since it was written, an artefact of another kind): refused;
- the current folder or one of its parents, an input, or a folder that holds
  an input: refused.

A refusal is an `OutputRefused` (a `ValueError`) with a one-line message
that names the path and what to do instead.
"""

import contextlib
import fcntl
import json
import os
import threading

from danet_keras.utils.atomic_io import (
    atomic_directory,
    atomic_path,
    is_partial,
    remove_dead_partials_of,
    write_json,
)
from danet_keras.utils.hashing import file_digest

MARKER = ".danet-keras.json"
_FORMAT = 1


class OutputRefused(ValueError):
    """A writer was asked for a path it must not write; the message says why and what to do."""


def _real(path):
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _contains(folder, path):
    """True when `path` is `folder` or lies inside it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _describe(kind):
    return kind.replace("_", " ")


def read_marker(folder):
    """The marker of `folder` as a dict, or None when it has none (or an unreadable one)."""
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _fingerprint(path):
    return {"size": os.path.getsize(path), "sha256": file_digest(path)}


def _listing(folder):
    """The files under `folder` (relative paths), without its marker."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(root, name), folder)
            if relative != MARKER:
                files.append(relative.replace(os.sep, "/"))
    return files


def _refuse_protected(path, inputs):
    """Refuses the current folder (or a parent of it), an input or a folder holding one."""
    real = _real(path)
    if _contains(real, _real(os.getcwd())):
        raise OutputRefused(
            f"refusing to write to {path}: it is the current folder or holds it; "
            "name a new folder inside it instead."
        )
    for source in inputs:
        if source is not None and isinstance(source, (str, os.PathLike)):
            if _contains(real, _real(source)):
                raise OutputRefused(
                    f"refusing to write to {path}: it is or holds the input {os.fspath(source)}; "
                    "choose an output path outside the inputs."
                )


def _not_ours(path, hint=""):
    return OutputRefused(
        f"refusing to write to {path}: it holds files that danet-keras did not write; "
        f"choose a new path{hint}."
    )


def _needs_overwrite(path, kind):
    return OutputRefused(
        f"{path} holds a {_describe(kind)} that danet-keras wrote earlier; pass --overwrite "
        "(overwrite=True in Python) to replace it."
    )


def _folder_hint(path, kind):
    if kind == "saved_model":
        # TF Serving watches a base folder of numbered versions.
        return f", e.g. a numbered version folder such as {os.path.join(path, '1')} for TF Serving"
    return ", or an empty or new folder"


def check_folder_artefact(path, kind, overwrite=False, inputs=()):
    """Refuses unless a folder artefact of `kind` may be written at `path`.

    Args:
        path: the folder to write.
        kind: what is written, e.g. `"saved_model"` or `"preset"`.
        overwrite: replace an artefact of the same kind that this project wrote.
        inputs: paths read by the writer; `path` may not be or hold one.

    Raises:
        OutputRefused: with a one-line message naming `path`.
    """
    _refuse_protected(path, inputs)
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        raise _not_ours(path, _folder_hint(path, kind))
    if not os.listdir(path):
        return  # an empty folder: nothing to lose
    marker = read_marker(path)
    written = set((marker or {}).get("contents") or ())
    if not marker or marker.get("artefact") != kind or set(_listing(path)) - written:
        raise _not_ours(path, _folder_hint(path, kind))
    if not overwrite:
        raise _needs_overwrite(path, kind)


@contextlib.contextmanager
def folder_artefact(path, kind, overwrite=False, inputs=()):
    """Yields a staging folder that replaces `path` atomically once filled.

    See `check_folder_artefact` for when `path` is refused; the check runs
    before anything is written and again just before the swap. The marker
    with the staged files' list is added last.

    Args:
        path: the folder to write.
        kind: what is written, e.g. `"saved_model"`.
        overwrite: replace an artefact of the same kind that this project wrote.
        inputs: paths read by the writer.

    Yields:
        The staging folder to fill.
    """
    check_folder_artefact(path, kind, overwrite, inputs)
    remove_dead_partials_of(path)
    with atomic_directory(path) as staging:
        yield staging
        write_json(
            os.path.join(staging, MARKER),
            {"format": _FORMAT, "artefact": kind, "contents": _listing(staging)},
        )
        # Another writer may have filled `path` while this one staged.
        check_folder_artefact(path, kind, overwrite, inputs)


# flock() treats each open descriptor on its own, so a second lock of a folder this process
# already holds would wait for itself forever: nested holds in a thread share the first one's
# descriptor ({folder: [descriptor, depth]}), and threads take turns per folder.
_HELD = {}
_THREAD_LOCKS = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def locked(folder):
    """Holds an exclusive lock on `folder` against other processes and threads.

    Used where a file in `folder` is read, changed and written whole (a
    folder's ledger, a cache file): two writers would otherwise lose one
    another's changes, or find the other's fresh file unrecorded and refuse
    it. Nested holds of one folder in one thread share the lock.

    Args:
        folder: an existing folder.
    """
    key = os.path.realpath(folder)
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.RLock())
    with thread_lock:
        held = _HELD.get(key)
        if held is None:
            descriptor = os.open(key, os.O_RDONLY)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except BaseException:
                os.close(descriptor)
                raise
            held = _HELD[key] = [descriptor, 0]
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
            if not held[1]:
                del _HELD[key]
                os.close(held[0])


def _recorded_file(path):
    folder, name = os.path.split(os.path.abspath(path))
    return ((read_marker(folder) or {}).get("files") or {}).get(name)


def check_file_artefact(path, kind, overwrite=False, inputs=()):
    """Refuses unless a file artefact of `kind` may be written at `path`.

    Args:
        path: the file to write.
        kind: what is written, e.g. `"tflite"`, `"label_map"`.
        overwrite: replace a file of the same kind that this project wrote
            (its size and SHA-256 unchanged since).
        inputs: paths read by the writer; `path` may not be or hold one.

    Raises:
        OutputRefused: with a one-line message naming `path`.
    """
    _refuse_protected(path, inputs)
    if not os.path.lexists(path):
        return
    record = _recorded_file(path)
    if (
        os.path.islink(path)
        or not os.path.isfile(path)
        or not record
        or record.get("kind") != kind
        or record.get("size") != os.path.getsize(path)
        or record.get("sha256") != file_digest(path)
    ):
        raise _not_ours(path)
    if not overwrite:
        raise _needs_overwrite(path, kind)


def record_files(paths, kind):
    """Records `paths` (files of one folder) in its marker as `kind` files this project wrote."""
    single = isinstance(paths, (str, os.PathLike))
    paths = [os.path.abspath(path) for path in ([paths] if single else paths)]
    folders = {os.path.dirname(path) for path in paths}
    if len(folders) != 1:
        raise ValueError(f"record_files takes files of one folder, got {sorted(folders)}.")
    folder = folders.pop()
    fingerprints = {os.path.basename(path): _fingerprint(path) for path in paths}
    with locked(folder):
        marker = read_marker(folder) or {"format": _FORMAT}
        files = marker.setdefault("files", {})
        for name, fingerprint in fingerprints.items():
            files[name] = {"kind": kind, **fingerprint}
        # Entries of files that are gone (moved or deleted by the user) mean nothing now.
        for other in [n for n in files if not os.path.isfile(os.path.join(folder, n))]:
            del files[other]
        write_json(os.path.join(folder, MARKER), marker)


@contextlib.contextmanager
def file_artefact(path, kind, overwrite=False, inputs=()):
    """Yields a temporary path that becomes `path` atomically, then records it.

    Args:
        path: the file to write; its folder is created.
        kind: what is written, e.g. `"tflite"`.
        overwrite: replace a file of the same kind that this project wrote.
        inputs: paths read by the writer.

    Yields:
        The temporary path to write to.
    """
    check_file_artefact(path, kind, overwrite, inputs)
    with atomic_path(path) as temporary:
        yield temporary
        check_file_artefact(path, kind, overwrite, inputs)
    record_files(path, kind)


def write_artefact_bytes(path, kind, data, overwrite=False):
    """Writes `data` as a file artefact (see `file_artefact`)."""
    with file_artefact(path, kind, overwrite) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)
    return path


def check_files(paths, kind, overwrite=False, inputs=()):
    """`check_file_artefact` for a batch of outputs, also refusing two inputs mapped to one path.

    Runs before anything is written, so that a refused batch writes nothing.

    Args:
        paths: the output paths, one per item of the batch (with their source
            in the message when given as `{output: source}`).
        kind: what is written.
        overwrite: see `check_file_artefact`.
        inputs: paths read by the writer.
    """
    seen = {}
    sources = paths if isinstance(paths, dict) else {path: None for path in paths}
    for path, source in sources.items():
        key = _real(path)
        if key in seen:
            raise OutputRefused(
                f"{seen[key] or 'two inputs'} and {source or 'another input'} would both be "
                f"written to {path}; rename one of them."
            )
        seen[key] = source
        check_file_artefact(path, kind, overwrite, inputs)


def check_output_folder(path, inputs=()):
    """Refuses a folder of outputs that is the current folder, holds an input, or is a file.

    The files written inside it are checked one by one (`check_files`).
    """
    _refuse_protected(path, inputs)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise _not_ours(path)


def check_owned_folder(path, kind, purpose="its own output"):
    """Refuses unless `own_folder(path, kind)` would take `path`; writes nothing.

    Args:
        path: the folder.
        kind: the owner, e.g. `"training_run"` or `"demo"`.
        purpose: how the refusal describes what the folder is for.
    """
    _refuse_protected(path, ())
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        raise _not_ours(path)
    # Another worker's marker being written (a temporary name) leaves the folder empty still.
    entries = [n for n in os.listdir(path) if not is_partial(n)] if os.path.isdir(path) else []
    if entries and owns(path) != kind:
        raise OutputRefused(
            f"refusing to write to {path}: it holds files that danet-keras did not write for "
            f"{purpose}; name a new or empty folder, or one that this command wrote before."
        )


def own_folder(path, kind, purpose="its own output"):
    """Claims `path` as a folder that a command of `kind` owns, creating it if needed.

    A new or empty folder is claimed (its marker written); a folder that the
    same kind of command claimed earlier is taken again (to resume a training
    run, or to redo the demo); any other folder is refused. The owner writes
    only its own file names inside, so a file that someone else put there is
    left alone.

    Args:
        path: the folder.
        kind: the owner, e.g. `"training_run"` or `"demo"`.
        purpose: how the refusal describes what the folder is for.

    Returns:
        `path`.
    """
    check_owned_folder(path, kind, purpose)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    # Locked: the workers of one multi-worker run claim the same folder at once.
    with locked(parent):
        check_owned_folder(path, kind, purpose)
        if owns(path) != kind:
            os.makedirs(path, exist_ok=True)
            write_json(os.path.join(path, MARKER), {"format": _FORMAT, "owner": kind})
    return path


def owns(folder):
    """The owner kind of `folder` (see `own_folder`), or None."""
    return (read_marker(folder) or {}).get("owner")


def is_other_output(folder):
    """True for a folder that is an artefact or another command's folder (has its own marker)."""
    return read_marker(folder) is not None
