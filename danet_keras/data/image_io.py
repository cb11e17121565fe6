"""Listing, pairing, checking and decoding image/label files.

Every reader goes through these functions, so bad input is caught the same
way everywhere:

- eagerly, when a split is opened (`list_files`, `pair_files`,
  `check_pairs`): a missing directory, an empty split, an image without a
  label or the reverse, an unreadable header, a label whose size differs
  from its image; with `check_files="full"` every file is also decoded
  whole once (PIL, cached by path, size and mtime; see `file_check`), which
  names damage that a header cannot show;
- inside `tf.data` (`decode_pair`), per example, at no decode cost: a file
  that is not PNG/JPEG or is truncated, a size mismatch, a label value that
  is not an id of the dataset;
- around the decoders (`DatasetSplit.decode`): a file that TensorFlow's
  decoder refuses (e.g. damaged in the middle, its signature and end marker
  intact) or that cannot be read any more becomes a problem that names the
  file (`decode_failure_problem`), instead of an error without a name that
  stops the pipeline.

Each problem is a message that names the file. By default it raises
(`ValueError` eagerly; `tf.errors.InvalidArgumentError` from the iterator,
with the message); with `skip_invalid=True` the example is dropped, a
warning is logged and `SkipTally` keeps the count, the reasons and the files.
"""

import collections
import logging
import os
import re
import threading

import numpy as np

from danet_keras.data.file_check import (
    JPEG_SIGNATURE,
    PNG_END,
    PNG_SIGNATURE,
    check_contents,
    check_files,
)

logger = logging.getLogger("danet_keras.data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_MAX_LISTED = 5
CHECK_MODES = ("header", "full")

# (how the detail of a problem message starts, its reason); see `problem_reason`.
REASONS = (
    ("image has no label file", "image without label"),
    ("label has no image file", "label without image"),
    ("file listed in the split is missing", "missing file"),
    ("cannot be read", "unreadable file"),
    ("empty file", "empty file"),
    ("not a PNG or JPEG", "not a PNG or JPEG file"),
    ("truncated", "truncated file"),
    ("damaged", "damaged file"),
    ("could not be decoded", "damaged file"),
    ("unreadable image", "damaged file"),
    ("unreadable SBD .mat", "damaged file"),
    ("label is a JPEG", "label not PNG"),
    ("label PNG of mode", "label not 8-bit"),
    ("colour label PNG", "colour label"),
    ("label size", "size mismatch"),
    ("label value", "label value not an id"),
)


def problem_reason(problem):
    """The short reason of a problem message (a key of `SkipTally.reasons`), or "other"."""
    detail = problem_file_and_detail(problem)[1]
    for start, reason in REASONS:
        if detail.startswith(start):
            return reason
    return "other"


def problem_file_and_detail(problem):
    """(file named by a problem message, what is wrong): messages are "FILE: DETAIL"."""
    name, separator, detail = problem.partition(": ")
    return (name, detail) if separator else ("", problem)


class SkipTally:
    """The examples a reader skipped (with `skip_invalid=True`) and why.

    Each bad example is counted once, however often it is met (every epoch
    meets it again; `events` counts those).

    Attributes:
        count: number of distinct skipped examples so far.
        problems: their messages, each naming a file and its problem.
        reasons: {reason: number of examples}, see `problem_reason`.
        files: the files named by the problems.
        events: skips including repeats.
    """

    def __init__(self, name):
        self.name = name
        self.problems = []
        self.events = 0
        self._seen = set()
        self._lock = threading.Lock()

    @property
    def count(self):
        return len(self.problems)

    @property
    def reasons(self):
        with self._lock:
            return dict(collections.Counter(problem_reason(p) for p in self.problems))

    @property
    def files(self):
        with self._lock:
            return [problem_file_and_detail(p)[0] for p in self.problems]

    def add(self, problem):
        """Records a skip; True when `problem` is new (it is logged then)."""
        with self._lock:
            self.events += 1
            if problem in self._seen:
                return False
            self._seen.add(problem)
            self.problems.append(problem)
            count = len(self.problems)
        logger.warning("%s: skipped %s (%d skipped so far)", self.name, problem, count)
        return True

    def summary(self):
        """One line: how many examples were skipped, per reason."""
        if not self.count:
            return f"{self.name}: no example skipped"
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.reasons.items()))
        return f"{self.name}: {self.count} example(s) skipped ({reasons})"

    def __repr__(self):
        return f"SkipTally({self.name!r}, count={self.count}, reasons={self.reasons})"


def raise_or_skip(problems, skip_invalid, tally, what):
    """Raises one ValueError listing `problems`, or records them in `tally`.

    Args:
        problems: list of messages, each naming a file.
        skip_invalid: record and go on instead of raising.
        tally: `SkipTally` for skipped problems.
        what: what was being checked, for the message.
    """
    if not problems:
        return
    if not skip_invalid:
        listed = "\n  ".join(problems[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        )
        raise ValueError(
            f"{what}: {len(problems)} invalid example(s) (pass skip_invalid=True to skip "
            f"them):\n  {listed}{more}"
        )
    for problem in problems:
        tally.add(problem)
    logger.warning("%s: %s: %d example(s) skipped in total", tally.name, what, tally.count)


def require_directory(path, what):
    """Raises FileNotFoundError naming `what` when `path` is not a directory."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} directory not found: {path}")
    return path


def list_files(directory, suffixes, recursive=True):
    """Sorted paths under `directory` whose names end with one of `suffixes`.

    Args:
        directory: existing directory (FileNotFoundError otherwise).
        suffixes: tuple of endings, compared case-insensitively.
        recursive: descend into subdirectories (sorted, so the order is stable).

    Returns:
        list of paths.
    """
    require_directory(directory, "data")
    suffixes = tuple(s.lower() for s in suffixes)
    found = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith(suffixes))
        if not recursive:
            break
    return sorted(found)


def read_split_list(path):
    """Non-empty, stripped lines of a split file such as VOC's `train.txt`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split list not found: {path}")
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def pair_files(image_paths, label_paths, image_key, label_key, skip_invalid, tally, where):
    """Matches images to labels by key; unmatched files are errors.

    Args:
        image_paths, label_paths: lists of paths.
        image_key, label_key: path -> key that an image and its label share.
        skip_invalid: skip unmatched files (counted in `tally`) instead of raising.
        tally: `SkipTally`.
        where: split description for messages (e.g. "cityscapes train in /data/cs").

    Returns:
        sorted list of (image_path, label_path).
    """
    images = {image_key(p): p for p in image_paths}
    labels = {label_key(p): p for p in label_paths}
    problems = [
        f"{images[k]}: image has no label file" for k in sorted(images.keys() - labels.keys())
    ]
    problems += [
        f"{labels[k]}: label has no image file" for k in sorted(labels.keys() - images.keys())
    ]
    raise_or_skip(problems, skip_invalid, tally, where)
    pairs = [(images[k], labels[k]) for k in sorted(images.keys() & labels.keys())]
    if not pairs:
        raise ValueError(f"{where}: empty split (no image/label pairs found)")
    return pairs


def pairs_from_names(names, image_pattern, label_pattern, skip_invalid, tally, where):
    """(image, label) paths for the ids of a split list; missing files are errors.

    Args:
        names: example ids (e.g. from `read_split_list`).
        image_pattern, label_pattern: format strings with `{}` for the id.
        skip_invalid, tally, where: as in `pair_files`.

    Returns:
        list of (image_path, label_path) in the list's order.
    """
    pairs, problems = [], []
    for name in names:
        image, label = image_pattern.format(name), label_pattern.format(name)
        missing = [p for p in (image, label) if not os.path.isfile(p)]
        if missing:
            problems += [f"{p}: file listed in the split is missing" for p in missing]
        else:
            pairs.append((image, label))
    raise_or_skip(problems, skip_invalid, tally, where)
    if not pairs:
        raise ValueError(f"{where}: empty split (no image/label pairs found)")
    return pairs


def _header_size(path):
    """(width, height) from the image header, or a problem string."""
    from PIL import Image

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
    raise_or_skip(problems, skip_invalid, tally, where)
    if not valid:
        raise ValueError(f"{where}: no valid image/label pairs left")
    return valid


# --- in-graph decoding ------------------------------------------------------------------------


def encoded_image_problem(contents):
    """ "" when `contents` looks like a complete PNG or JPEG, else the problem.

    Checks the signature and the end marker (IEND chunk, JPEG EOI within the
    last 32 bytes), which catches non-image and truncated files before a
    decoder fails on them without naming the file.

    Args:
        contents: scalar tf.string, the file's bytes.

    Returns:
        scalar tf.string.
    """
    import tensorflow as tf

    length = tf.strings.length(contents)
    is_png = tf.equal(tf.strings.substr(contents, 0, 8), PNG_SIGNATURE)
    is_jpeg = tf.equal(tf.strings.substr(contents, 0, 2), JPEG_SIGNATURE)
    png_complete = tf.equal(tf.strings.substr(contents, tf.maximum(length - 12, 0), 12), PNG_END)
    tail = tf.io.decode_raw(tf.strings.substr(contents, tf.maximum(length - 32, 0), 32), tf.uint8)
    tail = tf.cast(tail, tf.int32)
    jpeg_complete = tf.reduce_any(
        tf.logical_and(tf.equal(tail[:-1], 0xFF), tf.equal(tail[1:], 0xD9))
    )
    return tf.where(
        is_png,
        tf.where(png_complete, "", "truncated PNG (no IEND chunk)"),
        tf.where(
            is_jpeg,
            tf.where(jpeg_complete, "", "truncated JPEG (no end-of-image marker)"),
            "not a PNG or JPEG file",
        ),
    )


def _palette_indices(contents):
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(contents)) as image:
        return np.asarray(image, dtype=np.uint8)


def decode_label_png(contents):
    """Raw label values of a PNG as uint8 (H, W), and a problem string.

    Grey PNGs are decoded by TensorFlow. Palette PNGs (VOC's
    SegmentationClass) are read by PIL, because TensorFlow's decoder expands
    the palette to colours and the class indices would be lost. An RGB PNG
    is accepted when its channels are equal (grey stored as RGB, as TFDS
    stores scene_parse150); a colour-coded label is a problem.

    Args:
        contents: scalar tf.string holding a complete PNG.

    Returns:
        ((H, W) uint8 tensor, scalar tf.string problem, "" when fine).
    """
    import tensorflow as tf

    # IHDR colour type byte: 3 = indexed colour.
    is_palette = tf.equal(tf.strings.substr(contents, 25, 1), b"\x03")

    def palette():
        indices = tf.numpy_function(_palette_indices, [contents], tf.uint8, stateful=False)
        return tf.ensure_shape(indices, [None, None]), tf.constant("")

    def other():
        decoded = tf.io.decode_png(contents, channels=0)
        colours = decoded[..., : tf.minimum(tf.shape(decoded)[-1], 3)]
        grey = tf.reduce_all(tf.equal(colours, colours[..., :1]))
        problem = tf.where(grey, "", "colour label PNG (expected class ids, not colours)")
        return decoded[..., 0], problem

    return tf.cond(is_palette, palette, other)


def read_label_png(label_source, contents):
    """Raw values of a label PNG as int32 (H, W), and a problem string ("" if fine).

    Args:
        label_source: scalar tf.string (unused; the signature of `read_label`).
        contents: scalar tf.string, the file's bytes.

    Returns:
        ((H, W) int32 tensor, scalar tf.string); (1, 1) zeros with a problem.
    """
    import tensorflow as tf

    del label_source

    def decode():
        raw, problem = decode_label_png(contents)
        return tf.cast(raw, tf.int32), problem

    problem = encoded_image_problem(contents)
    return tf.cond(tf.equal(problem, ""), decode, lambda: (tf.zeros([1, 1], tf.int32), problem))


def _size_text(shape):
    import tensorflow as tf

    return tf.strings.join([tf.strings.as_string(shape[0]), "x", tf.strings.as_string(shape[1])])


def decode_pair(
    image_source,
    label_source,
    label_map,
    name,
    image_contents=None,
    label_contents=None,
    read_label=None,
):
    """Decodes and checks one example inside a `tf.data` map.

    Args:
        image_source, label_source: scalar tf.string naming the files in
            messages (their paths, or an example id).
        label_map: (256,) int32 lookup table raw value -> train id / 255 /
            -1 (invalid), see `danet_keras.data.labels`.
        name: dataset name, for messages.
        image_contents, label_contents: the encoded bytes; read from the
            sources as paths when None.
        read_label: `(source, contents) -> ((H, W) int32 raw values, problem)`;
            `read_label_png` when None. Others read labels that are not
            images (e.g. SBD `.mat`).

    Returns:
        image uint8 (H, W, 3), label uint8 (H, W) of train ids / 255, and a
        scalar tf.string problem ("" when the example is valid; the message
        names the file).
    """
    import tensorflow as tf

    if image_contents is None:
        image_contents = tf.io.read_file(image_source)
    if label_contents is None:
        label_contents = tf.io.read_file(label_source)
    image_problem = encoded_image_problem(image_contents)
    image = tf.cond(
        tf.equal(image_problem, ""),
        lambda: tf.io.decode_image(image_contents, channels=3, expand_animations=False),
        lambda: tf.zeros([1, 1, 3], tf.uint8),
    )
    raw, label_problem = (read_label or read_label_png)(label_source, label_contents)
    image_shape, label_shape = tf.shape(image), tf.shape(raw)
    same_size = tf.reduce_all(tf.equal(image_shape[:2], label_shape))
    mapped = tf.gather(tf.constant(label_map, tf.int32), tf.clip_by_value(raw, 0, 255))
    invalid = tf.logical_or(tf.less(mapped, 0), tf.not_equal(raw, tf.clip_by_value(raw, 0, 255)))
    first_invalid = tf.cond(
        tf.reduce_any(invalid), lambda: tf.boolean_mask(raw, invalid)[0], lambda: tf.constant(0)
    )
    problem = tf.case(
        [
            (
                tf.not_equal(image_problem, ""),
                lambda: tf.strings.join([image_source, ": ", image_problem]),
            ),
            (
                tf.not_equal(label_problem, ""),
                lambda: tf.strings.join([label_source, ": ", label_problem]),
            ),
            (
                tf.logical_not(same_size),
                lambda: tf.strings.join(
                    [
                        label_source,
                        ": label size ",
                        _size_text(label_shape),
                        " (HxW) differs from its image ",
                        image_source,
                        " (",
                        _size_text(image_shape),
                        ")",
                    ]
                ),
            ),
            (
                tf.reduce_any(invalid),
                lambda: tf.strings.join(
                    [
                        label_source,
                        ": label value ",
                        tf.strings.as_string(first_invalid),
                        " is not a label id of " + name,
                    ]
                ),
            ),
        ],
        default=lambda: tf.constant(""),
        exclusive=False,
    )
    label = tf.cast(tf.maximum(mapped, 0), tf.uint8)
    return image, label, problem


# --- when a decoder fails ---------------------------------------------------------------------


def _tf_error_text(error):
    """The first line of a TensorFlow error, without the function and op decorations."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*", "", text, flags=re.S)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _decode_error(decode):
    """TensorFlow's message when the eager `decode()` raises, else None."""
    try:
        decode()
    except Exception as error:  # any failure of the decoder is the answer
        return _tf_error_text(error)
    return None


def _explain_failure(sources, contents, from_files, read_label):
    """Eager part of `decode_failure_problem`: the message naming the file that fails."""
    import tensorflow as tf

    names = [s.numpy().decode("utf-8", "replace") for s in sources]
    for kind, name, source, given, from_file in zip(
        ("image", "label"), names, sources, contents, from_files
    ):
        if from_file:
            try:
                with open(name, "rb") as f:
                    data = f.read()
            except OSError as error:
                return f"{name}: cannot be read ({error.strerror or error})"
        else:
            data = given.numpy()
        if kind == "image":
            error = _decode_error(
                lambda: tf.io.decode_image(data, channels=3, expand_animations=False)
            )
        else:
            error = _decode_error(lambda: (read_label or read_label_png)(source, tf.constant(data)))
        if error is None:
            continue
        detail = ""
        if data.startswith(PNG_SIGNATURE) or data.startswith(JPEG_SIGNATURE):
            detail = check_contents(data, kind).problem
        return f"{name}: {detail or 'could not be decoded'} (TensorFlow: {error})"
    return f"{names[0]}: could not be decoded with its label {names[1]}"


def decode_failure_problem(
    image_source, label_source, image_contents=None, label_contents=None, read_label=None
):
    """The problem of an example whose decoding raised, naming the file (for `tf.data`).

    Runs only for an example that failed (see `DatasetSplit.decode`): decodes
    its image, then its label, eagerly, and names the first that fails with
    PIL's account of the damage (`file_check.check_contents`) and
    TensorFlow's message; a file that cannot be read any more is named too.

    Args:
        image_source, label_source: scalar tf.string, the paths (or names
            for messages when the contents are given).
        image_contents, label_contents: scalar tf.string encoded bytes, or
            None to read the sources as paths.
        read_label: the label reader of `decode_pair` (None: `read_label_png`).

    Returns:
        scalar tf.string, never "".
    """
    import tensorflow as tf

    from_files = (image_contents is None, label_contents is None)
    contents = [
        tf.constant(b"") if given is None else given for given in (image_contents, label_contents)
    ]

    def explain(image_source, label_source, image_contents, label_contents):
        return _explain_failure(
            (image_source, label_source), (image_contents, label_contents), from_files, read_label
        )

    problem = tf.py_function(explain, [image_source, label_source, *contents], tf.string)
    return tf.ensure_shape(problem, [])
