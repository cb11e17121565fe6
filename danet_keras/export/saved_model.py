"""SavedModel export for TF Serving, built on `keras.export.ExportArchive`.

The artefact has two serving signatures (TF Model Garden conventions):

- `serving_default`: `images` uint8 [B, H, W, 3] -> `class_ids` int32
  [B, H, W], `probabilities` float32 [B, H, W, K] and, unless disabled,
  `logits` float32 [B, H, W, K].
- `serve_image_bytes`: `image_bytes` string [B], each a PNG, JPEG, GIF or
  BMP file (TF Serving's REST API takes them as `{"b64": ...}`) -> the same
  outputs at the images' size. All images of one request must have the same
  height and width; send differently sized images in separate requests.

Bad input fails inside the signature with an `InvalidArgumentError` whose
message says what was expected (the runtime rejects a non-uint8 `images`
tensor; `tf.ensure_shape` rejects a wrong rank or channel count; the decoder
rejects bytes that are not an image), so a server answers the request with an
error instead of crashing.
"""

import tensorflow as tf

SERVING_DEFAULT = "serving_default"
SERVE_IMAGE_BYTES = "serve_image_bytes"
IMAGES_KEY = "images"
IMAGE_BYTES_KEY = "image_bytes"
OUTPUT_KEYS = ("class_ids", "probabilities", "logits")


def _validate_image_size(image_size):
    if image_size is None:
        return None
    image_size = tuple(image_size)
    if len(image_size) != 2 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in image_size
    ):
        raise ValueError(
            f"`image_size` must be None or (height, width) positive ints, got {image_size!r}."
        )
    return image_size


def images_spec(batch_size=None, image_size=None):
    """The `tf.TensorSpec` of the uint8 `images` input."""
    height, width = image_size or (None, None)
    return tf.TensorSpec([batch_size, height, width, 3], tf.uint8, name=IMAGES_KEY)


def segmentation_outputs(model, images, image_size=None, resize_images=False, include_logits=True):
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


def decode_image_batch(image_bytes):
    """Decodes a batch of encoded images of one size into uint8 (B, H, W, 3).

    Args:
        image_bytes: string tensor (B,), each a PNG, JPEG, GIF (first frame)
            or BMP file; grey and RGBA images are converted to RGB.

    Returns:
        uint8 (B, H, W, 3) tensor. Raises `InvalidArgumentError` for bytes
        that are not an image and for images of different sizes.
    """
    image_bytes = tf.ensure_shape(image_bytes, [None])

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

    Returns:
        The `ExportArchive`, ready for `write_out`.
    """
    import keras

    image_size = _validate_image_size(image_size)
    if resize_images and image_size is None:
        raise ValueError("`resize_images=True` needs `image_size=(height, width)`.")
    options = dict(
        image_size=image_size, resize_images=resize_images, include_logits=include_logits
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
            return segmentation_outputs(model, decode_image_batch(image_bytes), **options)

        archive.add_endpoint(
            SERVE_IMAGE_BYTES,
            serve_image_bytes,
            input_signature=[tf.TensorSpec([batch_size], tf.string, name=IMAGE_BYTES_KEY)],
        )
    return archive


def export_saved_model(
    model,
    path,
    image_size=None,
    resize_images=False,
    include_logits=True,
    include_image_bytes=True,
    verbose=False,
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

    Returns:
        `path`, as a string.
    """
    archive = build_export_archive(
        model,
        image_size=image_size,
        resize_images=resize_images,
        include_logits=include_logits,
        include_image_bytes=include_image_bytes,
    )
    archive.write_out(str(path), verbose=verbose)
    return str(path)
