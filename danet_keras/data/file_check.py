"""Up-front checks of a split's files when it is opened (`check_pairs`).

By default every pair's headers are read (about a millisecond per pair,
nothing decoded): an unreadable header, a file that is not PNG/JPEG, a label
whose size differs from its image are problems (see `problems`) before
training starts.

Whole-file checks, cached by (path, size, mtime): `check_files="full"`
decodes every file once
with PIL when a split is opened, so damage that a header read cannot see
(a PNG or JPEG damaged in the middle, its signature and end marker intact)
is named before training starts rather than met mid-epoch:

- PNG: `verify()` walks every chunk and checks its CRC, then `load()`
  inflates and unfilters the pixel data;
- JPEG: `load()` decodes the whole scan (a missing or damaged table, a
  bogus marker, truncated data);
- labels must be PNG (JPEG compression changes class ids) holding 8-bit
  ids (mode L or P; RGB is accepted and its channels are compared in the
  pipeline), so a 16-bit or 1-bit label is a problem rather than values
  that TensorFlow's decoder would silently rescale.

Results are cached in `cache_dir()/file-checks/`, one JSON file per
dataset directory (the common parent of the split's files), keyed by the
file's path and role and valid while its size and mtime are unchanged; a
modified file is checked again. The cache lives in the user's cache
directory, not in the dataset: dataset directories are often read-only or
shared between users and machines, and a per-user cache needs no write
access to them. It is written atomically (a temporary file in the same
directory, then `os.replace`), merged with what other processes wrote
meanwhile, and an unwritable cache only costs the re-check.

Cost: the first check decodes every file, in a thread pool (PIL releases
the GIL while it inflates and decodes); a cached check is one `stat` per
file. On the demo city (256x512 PNG images and labels, 2 shared cores)
that was about 4 ms per file the first time and 0.04 ms per file cached.
"""

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

from PIL import Image

from danet_keras.data.problems import kept_after
from danet_keras.utils.cache import CACHE_ENV, cache_dir

logger = logging.getLogger("danet_keras.data")

# Bump when `check_contents` changes, so older cached results are not reused.
CHECK_VERSION = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_SIGNATURE = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
LABEL_MODES = ("L", "P", "RGB", "RGBA")
KINDS = ("image", "label")
CHECK_MODES = ("header", "full")
_NONE_LEFT = "no valid image/label pairs left"


@dataclasses.dataclass(frozen=True)
class FileCheck:
    """The result of checking one file.

    Attributes:
        problem: "" when the file is fine, else what is wrong with it.
        size: (width, height) when the file decoded, else None.
        mode: PIL mode ("RGB", "L", "P", ...), "" when unknown.
    """

    problem: str
    size: tuple = None
    mode: str = ""


def signature_problem(contents):
    """ "" when `contents` starts like a PNG/JPEG and ends with its end marker, else the problem.

    The same test as the pipeline's `image_io.encoded_image_problem`.
    """
    if not contents:
        return "empty file"
    if contents.startswith(PNG_SIGNATURE):
        return "" if contents.endswith(PNG_END) else "truncated PNG (no IEND chunk)"
    if contents.startswith(JPEG_SIGNATURE):
        return "" if JPEG_END in contents[-32:] else "truncated JPEG (no end-of-image marker)"
    return "not a PNG or JPEG file"


def _error_text(error):
    text = str(error).strip() or "no message"
    return f"{type(error).__name__}: {text}"


def check_contents(contents, kind="image"):
    """Decodes a whole file with PIL and says what is wrong with it.

    Args:
        contents: the file's bytes.
        kind: "image" (a PNG or JPEG) or "label" (an 8-bit PNG of class ids).

    Returns:
        `FileCheck`.
    """
    problem = signature_problem(contents)
    if problem:
        return FileCheck(problem)
    is_png = contents.startswith(PNG_SIGNATURE)
    file_format = "PNG" if is_png else "JPEG"
    if kind == "label" and not is_png:
        return FileCheck("label is a JPEG file (labels must be PNG: JPEG changes class ids)")
    try:
        with Image.open(BytesIO(contents)) as image:
            size, mode = image.size, image.mode
            if is_png:
                image.verify()  # every chunk and its CRC, up to IEND
        with Image.open(BytesIO(contents)) as image:
            image.load()  # the whole pixel data
    except Exception as error:  # PIL raises several types for damaged data
        return FileCheck(f"damaged {file_format} data ({_error_text(error)})")
    if kind == "label" and mode not in LABEL_MODES:
        return FileCheck(
            f"label PNG of mode {mode} (expected 8-bit grey or palette class ids)", size, mode
        )
    return FileCheck("", size, mode)


def check_file(path, kind="image"):
    """Reads and checks one file: ((size, mtime_ns) of what was read, `FileCheck`)."""
    try:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            contents = f.read()
    except OSError as error:
        return None, FileCheck(f"cannot be read ({error.strerror or error})")
    return (stat.st_size, stat.st_mtime_ns), check_contents(contents, kind)


class CheckCache:
    """The cached `FileCheck`s of the files under one directory (see the module docstring)."""

    _warned = set()
    _lock = threading.Lock()

    def __init__(self, root, path):
        self.root = root
        self.path = path
        self.entries = self._read()
        self.new = {}

    @classmethod
    def for_paths(cls, paths):
        """The cache for the common directory of `paths` (absolute)."""
        root = os.path.commonpath([os.path.dirname(p) for p in paths])
        digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        return cls(root, os.path.join(cache_dir(), "file-checks", f"{digest}.json"))

    def _read(self):
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable file-check cache %s (%s)", self.path, error)
            return {}
        if data.get("version") != CHECK_VERSION or data.get("root") != self.root:
            return {}
        return data.get("files", {})

    def _key(self, path):
        return os.path.relpath(path, self.root)

    def get(self, path, kind, stamp):
        """The cached `FileCheck` of `path` for (size, mtime_ns) `stamp`, or None."""
        entry = self.entries.get(self._key(path))
        if entry is None or entry[0] != kind or entry[1:3] != list(stamp):
            return None
        problem, size, mode = entry[3:6]
        return FileCheck(problem, tuple(size) if size else None, mode)

    def put(self, path, kind, stamp, check):
        entry = [kind, *stamp, check.problem, list(check.size) if check.size else None, check.mode]
        self.new[self._key(path)] = entry

    def save(self):
        """Writes the new entries, merged with the file as it is now; atomic."""
        if not self.new:
            return
        with self._lock:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                files = {**self._read(), **self.new}
                data = {"version": CHECK_VERSION, "root": self.root, "files": files}
                handle, temporary = tempfile.mkstemp(
                    prefix=".tmp-", suffix=".json", dir=os.path.dirname(self.path)
                )
                try:
                    with os.fdopen(handle, "w") as f:
                        json.dump(data, f, separators=(",", ":"))
                    os.replace(temporary, self.path)
                except BaseException:
                    os.unlink(temporary)
                    raise
            except OSError as error:
                if self.path not in self._warned:
                    self._warned.add(self.path)
                    logger.warning(
                        "could not write the file-check cache %s (%s); files will be decoded "
                        "again next time (set %s to a writable directory)",
                        self.path,
                        error,
                        CACHE_ENV,
                    )
                return
            self.entries.update(self.new)
            self.new = {}


def default_workers():
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(32, cores))


def check_files(items, workers=None, cache=True):
    """Checks whole files in a thread pool, reusing cached results.

    Args:
        items: list of (path, kind), kind "image" or "label".
        workers: threads (default: the CPU cores this process may use, at most 32).
        cache: read and write the cache (see the module docstring).

    Returns:
        list of `FileCheck`, in the order of `items`.
    """
    if not items:
        return []
    items = [(os.path.abspath(path), kind) for path, kind in items]
    store = CheckCache.for_paths([path for path, _ in items]) if cache else None
    results = [None] * len(items)
    todo = []
    for index, (path, kind) in enumerate(items):
        if store is not None:
            try:
                stat = os.stat(path)
            except OSError as error:
                results[index] = FileCheck(f"cannot be read ({error.strerror or error})")
                continue
            results[index] = store.get(path, kind, (stat.st_size, stat.st_mtime_ns))
        if results[index] is None:
            todo.append(index)
    if todo:
        workers = workers or default_workers()
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            checked = pool.map(lambda index: check_file(*items[index]), todo)
            for index, (stamp, result) in zip(todo, checked):
                results[index] = result
                if store is not None and stamp is not None:
                    store.put(*items[index], stamp, result)
        if store is not None:
            store.save()
        logger.info(
            "checked %d file(s) whole (%d from the cache)", len(todo), len(items) - len(todo)
        )
    return results


# --- the checks of a split ---------------------------------------------------------------------


def _header_size(path):
    """(width, height) from the image header, or a problem string."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not (start.startswith(PNG_SIGNATURE) or start.startswith(JPEG_SIGNATURE)):
        return "not a PNG or JPEG file"
    try:
        with Image.open(path) as image:
            if image.format not in ("PNG", "JPEG"):
                return f"not a PNG or JPEG file ({image.format})"
            return image.size
    except Exception as error:  # PIL raises several types for unreadable files
        return f"unreadable image ({type(error).__name__}: {error})"


def _whole_file_sizes(images, labels, workers):
    """(width, height) or a problem string per image and per label (`file_check.check_files`)."""
    items = [(p, "image") for p in images] + [(p, "label") for p in labels]
    sizes = [check.problem or check.size for check in check_files(items, workers)]
    return sizes[: len(images)], sizes[len(images) :]


def check_pairs(pairs, skip_invalid, tally, where, check_label_size=True, full=False, workers=None):
    """Checks every file eagerly: unreadable or damaged files and size mismatches are errors.

    The header check costs about a millisecond per pair (nothing is decoded).
    `full=True` decodes every file whole once with PIL, in a thread pool, and
    caches the result by path, size and mtime (see `file_check`): damage in
    the middle of a file, a label that is not an 8-bit PNG. On the demo city
    (256x512 PNGs, 2 shared cores) that was about 4 ms per file the first
    time and 0.04 ms per file cached.

    Args:
        pairs: list of (image_path, label_path).
        skip_invalid, tally, where: as in `pair_files`.
        check_label_size: also check labels and compare label and image
            sizes (False for labels that are not images, e.g. `.mat`).
        full: decode every file whole (cached) instead of reading headers.
        workers: threads of the whole-file check (default: the usable cores).

    Returns:
        the valid pairs.
    """
    images = [image for image, _ in pairs]
    labels = [label for _, label in pairs]
    if full:
        image_sizes, label_sizes = _whole_file_sizes(
            images, labels if check_label_size else [], workers
        )
    else:
        image_sizes = [_header_size(p) for p in images]
        label_sizes = [_header_size(p) for p in labels] if check_label_size else None
    valid, problems = [], []
    for index, (image_path, label_path) in enumerate(pairs):
        image_size = image_sizes[index]
        label_size = label_sizes[index] if check_label_size else image_size
        if isinstance(image_size, str):
            problems.append(f"{image_path}: {image_size}")
        elif isinstance(label_size, str):
            problems.append(f"{label_path}: {label_size}")
        elif tuple(image_size) != tuple(label_size):
            problems.append(
                f"{label_path}: label size {label_size[0]}x{label_size[1]} (WxH) differs from "
                f"its image {image_path} ({image_size[0]}x{image_size[1]})"
            )
        else:
            valid.append((image_path, label_path))
    return kept_after(valid, problems, skip_invalid, tally, where, _NONE_LEFT)
