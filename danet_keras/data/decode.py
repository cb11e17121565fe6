"""Decoding and checking examples inside `tf.data`, and naming the file when a decoder fails.

- `decode_pair`, per example, at no decode cost: a file that is not
  PNG/JPEG or is truncated, a size mismatch, a label value that is not an
  id of the dataset;
- around the decoders (`DatasetSplit.decode`): a file that TensorFlow's
  decoder refuses (e.g. damaged in the middle, its signature and end marker
  intact) or that cannot be read any more becomes a problem that names the
  file (`decode_failure_problem`), instead of an error without a name that
  stops the pipeline.

Each problem is a scalar string naming the file, "" for a valid example
(see `problems` for how it is raised or skipped).
"""

import re
from io import BytesIO

import numpy as np
import tensorflow as tf
from PIL import Image

from danet_keras.data.file_check import JPEG_SIGNATURE, PNG_END, PNG_SIGNATURE, check_contents


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
    del label_source

    def decode():
        raw, problem = decode_label_png(contents)
        return tf.cast(raw, tf.int32), problem

    problem = encoded_image_problem(contents)
    return tf.cond(tf.equal(problem, ""), decode, lambda: (tf.zeros([1, 1], tf.int32), problem))


def _size_text(shape):
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
