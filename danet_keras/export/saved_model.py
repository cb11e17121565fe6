"""SavedModel export for TF Serving, built on `keras.export.ExportArchive`.

The artefact has two serving signatures (TF Model Garden conventions) and a
metadata signature:

- `serving_default`: `images` uint8 [B, H, W, 3] -> `class_ids` int32
  [B, H, W], `probabilities` float32 [B, H, W, K] and, unless disabled,
  `logits` float32 [B, H, W, K].
- `serve_image_bytes`: `image_bytes` string [B], each a PNG, JPEG, GIF, BMP
  or WebP file (TF Serving's REST API takes them as `{"b64": ...}`) -> the same
  outputs at the images' size. All images of one request must have the same
  height and width; send differently sized images in separate requests.
- `metadata` (no inputs; `export_saved_model` adds it): the model's classes,
  `class_names` string [K], `palette` int32 [K, 3] and `classes_json`; the
  names are also the asset `assets/labels.txt` (see `export.metadata`).

Bad input fails inside the signature with an `InvalidArgumentError` whose
message says what was expected (the runtime rejects a non-uint8 `images`
tensor; `tf.ensure_shape` rejects a wrong rank or channel count; the decoder
rejects bytes that are not an image), so a server answers the request with an
error instead of crashing.

A request cannot make the server allocate more than the exporter allowed:
`export_saved_model(max_image_size=(4096, 4096))` (the default) makes both
signatures refuse an image above that height or width, and `max_batch_size` a
batch above that many images. `serve_image_bytes` reads each image's size from
its header with string ops inside the graph (PNG IHDR, JPEG SOFn through
`tf.io.extract_jpeg_shape`, every GIF frame descriptor, BMP and WebP headers)
and refuses before any pixel is decoded, so a small file that claims a huge
image costs a few kilobytes, not gigabytes. With a limit, only those five
formats are accepted (JPEG XL, whose header is bit-packed, is refused).
"""

import keras
import tensorflow as tf

from danet_keras.data.classes import model_classes
from danet_keras.export.image_headers import encoded_image_size
from danet_keras.export.metadata import add_metadata_signature, write_labels_asset
from danet_keras.inference.optimize import inference_model
from danet_keras.utils.output_paths import check_folder_artefact, folder_artefact

SERVING_DEFAULT = "serving_default"
SERVE_IMAGE_BYTES = "serve_image_bytes"
IMAGES_KEY = "images"
IMAGE_BYTES_KEY = "image_bytes"
OUTPUT_KEYS = ("class_ids", "probabilities", "logits")
DEFAULT_MAX_IMAGE_SIZE = (4096, 4096)
SAVED_MODEL_KIND = "saved_model"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_image_size(image_size, name="image_size"):
    if image_size is None:
        return None
    image_size = tuple(image_size)
    if len(image_size) != 2 or any(not _is_int(s) or s < 1 for s in image_size):
        raise ValueError(
            f"`{name}` must be None or (height, width) positive ints, got {image_size!r}."
        )
    return image_size


def _validate_max_batch_size(max_batch_size):
    if max_batch_size is not None and (not _is_int(max_batch_size) or max_batch_size < 1):
        raise ValueError(
            f"`max_batch_size` must be None or a positive int, got {max_batch_size!r}."
        )
    return max_batch_size


def _refuse_unless(condition, message):
    """An Assert op: `InvalidArgumentError` "assertion failed: [message]" unless `condition`."""
    return tf.debugging.Assert(condition, [message])


def _as_string(value):
    return tf.strings.as_string(value)


def _too_large_message(height, width, max_image_size):
    return tf.strings.join(
        [
            "image of ",
            _as_string(height),
            "x",
            _as_string(width),
            " pixels (height x width) exceeds the maximum "
            f"{max_image_size[0]}x{max_image_size[1]} of this model",
        ]
    )


def _batch_check(batch, max_batch_size):
    return _refuse_unless(
        batch <= max_batch_size,
        tf.strings.join(
            [
                "batch of ",
                _as_string(batch),
                f" images exceeds the maximum {max_batch_size} of this model; split the request",
            ]
        ),
    )


def check_image_limits(images, max_image_size=None, max_batch_size=None):
    """Refuses images larger than `max_image_size` or batches larger than `max_batch_size`.

    Args:
        images: (B, H, W, C) tensor.
        max_image_size: None (no limit) or the largest (height, width).
        max_batch_size: None (no limit) or the largest B.

    Returns:
        `images`, once the checks have passed; otherwise the signature raises
        `InvalidArgumentError` naming the limit.
    """
    shape = tf.shape(images)
    checks = []
    if max_batch_size is not None:
        checks.append(_batch_check(shape[0], max_batch_size))
    if max_image_size is not None:
        height, width = shape[1], shape[2]
        checks.append(
            _refuse_unless(
                tf.logical_and(height <= max_image_size[0], width <= max_image_size[1]),
                _too_large_message(height, width, max_image_size),
            )
        )
    if not checks:
        return images
    with tf.control_dependencies(checks):
        return tf.identity(images)


def images_spec(batch_size=None, image_size=None):
    """The `tf.TensorSpec` of the uint8 `images` input."""
    height, width = image_size or (None, None)
    return tf.TensorSpec([batch_size, height, width, 3], tf.uint8, name=IMAGES_KEY)


def segmentation_outputs(
    model,
    images,
    image_size=None,
    resize_images=False,
    include_logits=True,
    max_image_size=None,
    max_batch_size=None,
):
    """Runs a segmentation model on uint8 images, as every exported signature does.

    Args:
        model: a model mapping float [0, 255] RGB images to a dict with
            `"logits"` (B, H, W, K), such as `danet_keras.DANet`.
        images: uint8 (B, H, W, 3) tensor.
        image_size: None, or the (height, width) the model runs at.
        resize_images: with `image_size`, resize the images to it (bilinear,
            half-pixel) and the logits back to the images' size; without,
            images of another size are an error.
        include_logits: also return the logits.
        max_image_size: None, or the largest (height, width) accepted: a
            larger image raises `InvalidArgumentError` before the model runs.
        max_batch_size: None, or the largest batch accepted.

    Returns:
        Dict with `class_ids` int32 (B, H, W), `probabilities` float32
        (B, H, W, K) and, with `include_logits`, `logits` float32 (B, H, W, K).
    """
    expected = [None, None, None, 3]
    if image_size is not None and not resize_images:
        expected = [None, image_size[0], image_size[1], 3]
    # A runtime check (EnsureShape stays in the graph): raises InvalidArgumentError
    # "Shape of tensor ... is not compatible with expected shape [?,?,?,3]".
    images = tf.ensure_shape(images, expected)
    images = check_image_limits(images, max_image_size, max_batch_size)
    pixels = tf.cast(images, tf.float32)
    if image_size is not None and resize_images:
        original_size = tf.shape(images)[1:3]
        pixels = tf.image.resize(pixels, image_size, method="bilinear")
    logits = tf.cast(model(pixels, training=False)["logits"], tf.float32)
    if image_size is not None and resize_images:
        logits = tf.image.resize(logits, original_size, method="bilinear")
    outputs = {
        "class_ids": tf.argmax(logits, axis=-1, output_type=tf.int32),
        "probabilities": tf.nn.softmax(logits, axis=-1),
    }
    if include_logits:
        outputs["logits"] = logits
    return outputs


def _check_encoded_images(image_bytes, max_image_size):
    """An Assert op refusing unreadable headers and images above `max_image_size`."""

    def check(data):
        size, message = encoded_image_size(data, max_image_size)
        too_large = tf.logical_or(size[0] > max_image_size[0], size[1] > max_image_size[1])
        message = tf.where(
            tf.logical_and(tf.equal(message, ""), too_large),
            _too_large_message(size[0], size[1], max_image_size),
            message,
        )
        return message

    messages = tf.map_fn(check, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
    refused = tf.not_equal(messages, "")
    # Name the first refused image; the padding keeps an empty batch valid.
    first = tf.argmax(tf.cast(tf.concat([refused, [False]], 0), tf.int32), output_type=tf.int32)
    message = tf.strings.join(
        [
            IMAGE_BYTES_KEY,
            "[",
            _as_string(first),
            "]: ",
            tf.gather(tf.concat([messages, [""]], 0), first),
        ]
    )
    return _refuse_unless(tf.logical_not(tf.reduce_any(refused)), message)


def decode_image_batch(image_bytes, max_image_size=None, max_batch_size=None):
    """Decodes a batch of encoded images of one size into uint8 (B, H, W, 3).

    Args:
        image_bytes: string tensor (B,), each a PNG, JPEG, GIF (first frame),
            BMP or WebP file; grey and RGBA images are converted to RGB
            (except WebP, whose decoder refuses RGBA when asked for RGB).
        max_image_size: None (no limit), or the largest (height, width): the
            images' sizes are read from their headers first, and the batch is
            refused before any of them is decoded if one is larger, or if a
            header cannot be read (only PNG, JPEG, GIF, BMP and WebP are
            accepted then).
        max_batch_size: None (no limit), or the largest batch accepted.

    Returns:
        uint8 (B, H, W, 3) tensor. Raises `InvalidArgumentError` for bytes
        that are not an image, for images of different sizes and for a
        request beyond the limits (the message names the limit).
    """
    image_bytes = tf.ensure_shape(image_bytes, [None])
    checks = []
    if max_batch_size is not None:
        checks.append(_batch_check(tf.shape(image_bytes)[0], max_batch_size))
    if max_image_size is not None:
        with tf.control_dependencies(checks):
            checks.append(_check_encoded_images(image_bytes, max_image_size))
    if checks:
        with tf.control_dependencies(checks):
            image_bytes = tf.identity(image_bytes)

    def decode(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.reshape(image, [-1]), tf.shape(image)[:2]

    # Each image's pixels come back flat (a ragged row per image), so that
    # images of different sizes reach the size check below instead of
    # failing inside the loop with an unreadable message.
    pixels, sizes = tf.map_fn(
        decode,
        image_bytes,
        fn_output_signature=(
            tf.RaggedTensorSpec([None], tf.uint8, ragged_rank=0),
            tf.TensorSpec([2], tf.int32),
        ),
    )
    same_size = tf.debugging.assert_equal(
        sizes,
        tf.broadcast_to(sizes[:1], tf.shape(sizes)),
        message=(
            "all images of one serve_image_bytes request must have the same height and "
            "width; send differently sized images in separate requests"
        ),
    )
    with tf.control_dependencies([same_size]):
        return tf.reshape(pixels.flat_values, [-1, sizes[0, 0], sizes[0, 1], 3])


def build_export_archive(
    model,
    batch_size=None,
    image_size=None,
    resize_images=False,
    include_logits=True,
    include_image_bytes=True,
    max_image_size=None,
    max_batch_size=None,
    classes=None,
):
    """A `keras.export.ExportArchive` with the serving signatures of `model`.

    Args:
        model: the Keras segmentation model (dict output with `"logits"`).
        batch_size: None (any) or a fixed batch size.
        image_size: None (any height and width) or (height, width): see
            `segmentation_outputs`.
        resize_images: see `segmentation_outputs`; needs `image_size`.
        include_logits: add the `logits` output.
        include_image_bytes: add the `serve_image_bytes` signature.
        max_image_size: None (no limit, the default here; `export_saved_model`
            defaults to `DEFAULT_MAX_IMAGE_SIZE`) or the largest (height,
            width) the signatures accept: see `decode_image_batch`.
        max_batch_size: None (no limit) or the largest batch the signatures
            accept.
        classes: None, or a `DatasetInfo` of the model's classes
            (`models.classes.model_classes(model)`) for the `metadata`
            signature (see `export.metadata`).

    Returns:
        The `ExportArchive`, ready for `write_out`.
    """
    image_size = _validate_image_size(image_size)
    max_image_size = _validate_image_size(max_image_size, "max_image_size")
    max_batch_size = _validate_max_batch_size(max_batch_size)
    if resize_images and image_size is None:
        raise ValueError("`resize_images=True` needs `image_size=(height, width)`.")
    if (
        image_size is not None
        and not resize_images
        and max_image_size is not None
        and (image_size[0] > max_image_size[0] or image_size[1] > max_image_size[1])
    ):
        raise ValueError(
            f"`image_size` {image_size} exceeds `max_image_size` {max_image_size}: every request "
            "would be refused. Pass a larger `max_image_size`, or None."
        )
    if batch_size is not None and max_batch_size is not None and batch_size > max_batch_size:
        raise ValueError(
            f"`batch_size` {batch_size} exceeds `max_batch_size` {max_batch_size}: every request "
            "would be refused."
        )
    limits = dict(max_image_size=max_image_size, max_batch_size=max_batch_size)
    options = dict(
        image_size=image_size, resize_images=resize_images, include_logits=include_logits, **limits
    )
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve_images(images):
        return segmentation_outputs(model, images, **options)

    input_size = None if resize_images else image_size
    archive.add_endpoint(
        SERVING_DEFAULT, serve_images, input_signature=[images_spec(batch_size, input_size)]
    )
    if include_image_bytes:

        def serve_image_bytes(image_bytes):
            images = decode_image_batch(image_bytes, **limits)
            return segmentation_outputs(model, images, **options)

        archive.add_endpoint(
            SERVE_IMAGE_BYTES,
            serve_image_bytes,
            input_signature=[tf.TensorSpec([batch_size], tf.string, name=IMAGE_BYTES_KEY)],
        )
    if classes is not None:
        add_metadata_signature(archive, classes)
    return archive


def export_saved_model(
    model,
    path,
    image_size=None,
    resize_images=False,
    include_logits=True,
    include_image_bytes=True,
    verbose=False,
    max_image_size=DEFAULT_MAX_IMAGE_SIZE,
    max_batch_size=None,
    optimize=True,
    dtype_policy=None,
    overwrite=False,
):
    """Writes `model` as a SavedModel for TF Serving (see the module docstring).

    The SavedModel is self-contained: `tf.saved_model.load(path)` works in a
    process that never imports danet_keras.

    Args:
        model: the Keras segmentation model, e.g. `danet_keras.DANet`.
        path: output directory.
        image_size: None (any height and width, the default) or (height,
            width) for targets that need a static spatial shape.
        resize_images: with `image_size`, accept any size and resize to
            `image_size` inside the signature (outputs come back at the
            input's size).
        include_logits: add the `logits` output.
        include_image_bytes: add the `serve_image_bytes` signature.
        verbose: let Keras print the archive's endpoints.
        max_image_size: (height, width), default 4096 x 4096: both
            signatures refuse a larger image with `InvalidArgumentError`
            ("image of 12000x12000 pixels (height x width) exceeds the maximum
            4096x4096 of this model"); `serve_image_bytes` reads the size from
            the header and refuses before decoding any pixel, and then accepts
            only PNG, JPEG, GIF, BMP and WebP. None removes the limit (and the
            header checks). The model's activations grow with the pixels:
            pick the largest size the server's memory holds.
        max_batch_size: None (no limit, the default) or the largest number of
            images in one request; both signatures refuse a larger batch
            before decoding or running the model.
        optimize: export `danet_keras.optimize_for_inference(model)`, the
            same function with fewer FLOPs (float32 outputs within 1e-4 of
            the logit range); False: the model as it is.
        dtype_policy: None, or `"mixed_bfloat16"` for bfloat16 compute
            (float32 outputs).
        overwrite: replace a SavedModel that danet-keras wrote at `path`
            earlier. Without it that is refused, and so is, always, a `path`
            that holds anything else (TF Serving's base folder of numbered
            versions, say: write to a new version folder such as `path/2`);
            see `danet_keras.utils.output_paths`.

    Returns:
        `path`, as a string.
    """
    check_folder_artefact(path, SAVED_MODEL_KIND, overwrite)
    classes = model_classes(model)
    archive = build_export_archive(
        inference_model(model, optimize, dtype_policy),
        image_size=image_size,
        resize_images=resize_images,
        include_logits=include_logits,
        include_image_bytes=include_image_bytes,
        max_image_size=max_image_size,
        max_batch_size=max_batch_size,
        classes=classes,
    )
    # A serving directory that a model server watches must never be half written.
    with folder_artefact(path, SAVED_MODEL_KIND, overwrite) as staging:
        archive.write_out(staging, verbose=verbose)
        write_labels_asset(staging, classes)
    return str(path)
