"""SavedModel export for TF Serving, built on `keras.export.ExportArchive`.

The artefact has two serving signatures (TF Model Garden conventions) and a
metadata signature:

- `serving_default`: `images` uint8 [B, H, W, 3] -> `class_ids` int32
  [B, H, W], `probabilities` float32 [B, H, W, K] and `logits` float32
  [B, H, W, K], or those of them that `outputs` names.
- `serve_image_bytes`: `image_bytes` string [B], each a PNG, JPEG, GIF, BMP
  or WebP file (TF Serving's REST API takes them as `{"b64": ...}`) -> the same
  outputs at the images' size.

Every output travels in a REST response as JSON text: for a 1024 x 2048 frame
and 19 classes, `class_ids` alone is a few MB, the two float outputs hundreds
(`benchmarks/response_size.py`). `outputs=("class_ids",)` exports a model
that answers with the class map only. All images of one request must have the same
  height and width; send differently sized images in separate requests.
- `metadata` (no inputs; `export_saved_model` adds it): the model's classes,
  `class_names` string [K], `palette` int32 [K, 3] and `classes_json`; the
  names are also the asset `assets/labels.txt` (see `export.metadata`).

Bad input fails inside the signature with an `InvalidArgumentError` whose
message says what was expected (the runtime rejects a non-uint8 `images`
tensor; `tf.ensure_shape` rejects a wrong rank or channel count; the decoder
rejects bytes that are not an image), so a server answers the request with an
error instead of crashing.

A request cannot make the server allocate more than the exporter allowed.
`export_saved_model` sets four limits by default, and both signatures refuse
a request beyond them with an `InvalidArgumentError` naming the limit, before
the model runs, and the process serves the next request:

- `max_image_size=(4096, 4096)`: the largest height and width of an image;
- `max_batch_size=16`: the most images in one request;
- `max_request_pixels=1024 * 2048` (one Cityscapes frame): the most pixels
  in one request, the sum of height x width over its images ("request of
  2098176 pixels (the sum of height x width over its images) exceeds the
  maximum 2097152 of this model; split the request");
- JPEGs of at most `MAX_JPEG_SCANS` (100) scans (`image_headers`): libjpeg
  passes over the whole image once per scan of a progressive JPEG, with no
  limit of its own.

`serving_default` checks the tensor's shape. `serve_image_bytes` checks the
batch size, then reads each image's size from its header with string ops
inside the graph (PNG IHDR, JPEG SOFn through `tf.io.extract_jpeg_shape`,
every GIF frame descriptor, BMP and WebP headers) and counts each JPEG's
scans, and refuses before any image is decoded, so a small file that claims
a huge image costs a few kilobytes, not gigabytes, and a request of 48
all-black 4096 x 4096 PNGs (2.4 MB) is refused in milliseconds instead of
aborting the server. With a size limit, only those five formats are accepted
(JPEG XL, whose header is bit-packed, is refused).

No accepted request creates a tensor of 2**31 elements or more (TensorFlow
counts elements with 32-bit integers in places and aborts the process, for
every client of a model server): the exporter bounds the largest tensor of
any request the limits accept from the traced graph (`request_tensor_bound`,
whose rule the tests check on odd, thin and batched requests) and refuses,
with a `ValueError`, limits under which it could reach `MAX_TENSOR_ELEMENTS`.
For DANet-ResNet50 the largest tensor is the backbone's 2048-channel output,
32 elements per pixel; the position attention's energy is computed in query
blocks of at most `energy_budget` (2**24) elements, never N x N at once. At
the defaults the bound is 448,743,424 elements, and one 1024 x 2048 request
peaks at 1.7 GB of resident memory in a fresh serving process
(docs/reliability.md).
Passing None for every limit removes the checks and the guarantee.
"""

import math
import typing
import warnings

import keras
import tensorflow as tf

from danet_keras.data.classes import model_classes
from danet_keras.export.image_headers import MAX_JPEG_SCANS, encoded_image_size
from danet_keras.export.metadata import add_metadata_signature, write_labels_asset
from danet_keras.inference.optimize import inference_model
from danet_keras.utils.backends import require_tensorflow_backend
from danet_keras.utils.output_paths import check_folder_artefact, folder_artefact

SERVING_DEFAULT = "serving_default"
SERVE_IMAGE_BYTES = "serve_image_bytes"
IMAGES_KEY = "images"
IMAGE_BYTES_KEY = "image_bytes"
# What the signatures can return, in the order they return them.
OUTPUT_KEYS = ("class_ids", "probabilities", "logits")
DEFAULT_MAX_IMAGE_SIZE = (4096, 4096)
SAVED_MODEL_KIND = "saved_model"
# One request: at most 16 images, and at most one Cityscapes frame of pixels
# (1024 x 2048) in all; see the module docstring for what they bound.
DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_MAX_REQUEST_PIXELS = 1024 * 2048
# TensorFlow counts a tensor's elements in places with 32-bit integers: a
# larger tensor aborts the process (tensor_shape.cc "Check failed: size >= 0").
MAX_TENSOR_ELEMENTS = 2**31 - 1
# Square images of these sides probe the graph's padding (see `request_tensor_bound`):
# 1 pixel, and one pixel past each power-of-two cell up to 128 pixels.
_MARGIN_PROBE_SIDES = (1, 9, 17, 33, 65, 129)
_RATE_PROBE_PIXELS = 1024 * 1024


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


def _validate_positive_int(value, name):
    if value is not None and (not _is_int(value) or value < 1):
        raise ValueError(f"`{name}` must be None or a positive int, got {value!r}.")
    return value


def _validate_max_batch_size(max_batch_size):
    return _validate_positive_int(max_batch_size, "max_batch_size")


def serving_output_keys(outputs=None, include_logits=None):
    """The names of the outputs the signatures return, checked, in `OUTPUT_KEYS` order.

    Args:
        outputs: None (all of `OUTPUT_KEYS`), or some of them: a sequence, or
            one name or comma-separated names as a string.
        include_logits: deprecated (use `outputs`); False drops `"logits"`.

    Returns:
        A tuple of names.
    """
    if isinstance(outputs, str):
        outputs = outputs.split(",")
    names = OUTPUT_KEYS if outputs is None else [str(name).strip() for name in outputs]
    if include_logits is not None:
        warnings.warn(
            "`include_logits` is deprecated and goes in the next release; pass "
            "`outputs=('class_ids', 'probabilities')` instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        if not include_logits:
            names = [name for name in names if name != "logits"]
    if not names or any(name not in OUTPUT_KEYS for name in names):
        raise ValueError(
            f"`outputs` takes one or more of {', '.join(OUTPUT_KEYS)}; got {list(names)!r}."
        )
    return tuple(name for name in OUTPUT_KEYS if name in names)


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


def _pixels_check(pixels, max_request_pixels):
    """Refuses a request of more than `max_request_pixels` pixels (int64 `pixels`)."""
    return _refuse_unless(
        pixels <= max_request_pixels,
        tf.strings.join(
            [
                "request of ",
                _as_string(pixels),
                " pixels (the sum of height x width over its images) exceeds the maximum "
                f"{max_request_pixels} of this model; split the request",
            ]
        ),
    )


def check_image_limits(images, max_image_size=None, max_batch_size=None, max_request_pixels=None):
    """Refuses images, batches or requests beyond the limits, before the model runs.

    Args:
        images: (B, H, W, C) tensor.
        max_image_size: None (no limit) or the largest (height, width).
        max_batch_size: None (no limit) or the largest B.
        max_request_pixels: None (no limit) or the largest B x H x W.

    Returns:
        `images`, once the checks have passed; otherwise the signature raises
        `InvalidArgumentError` naming the limit.
    """
    shape = tf.shape(images)
    checks = []
    if max_batch_size is not None:
        checks.append(_batch_check(shape[0], max_batch_size))
    if max_request_pixels is not None:
        pixels = tf.reduce_prod(tf.cast(shape[:3], tf.int64))
        checks.append(_pixels_check(pixels, max_request_pixels))
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
    outputs=OUTPUT_KEYS,
    max_image_size=None,
    max_batch_size=None,
    max_request_pixels=None,
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
        outputs: the names of `OUTPUT_KEYS` to return.
        max_image_size: None, or the largest (height, width) accepted: a
            larger image raises `InvalidArgumentError` before the model runs.
        max_batch_size: None, or the largest batch accepted.
        max_request_pixels: None, or the largest number of pixels (B x H x
            W) accepted.

    Returns:
        Dict of the `outputs`: `class_ids` int32 (B, H, W), `probabilities`
        float32 (B, H, W, K), `logits` float32 (B, H, W, K).
    """
    expected = [None, None, None, 3]
    if image_size is not None and not resize_images:
        expected = [None, image_size[0], image_size[1], 3]
    # A runtime check (EnsureShape stays in the graph): raises InvalidArgumentError
    # "Shape of tensor ... is not compatible with expected shape [?,?,?,3]".
    images = tf.ensure_shape(images, expected)
    images = check_image_limits(images, max_image_size, max_batch_size, max_request_pixels)
    pixels = tf.cast(images, tf.float32)
    if image_size is not None and resize_images:
        original_size = tf.shape(images)[1:3]
        pixels = tf.image.resize(pixels, image_size, method="bilinear")
    logits = tf.cast(model(pixels, training=False)["logits"], tf.float32)
    if image_size is not None and resize_images:
        logits = tf.image.resize(logits, original_size, method="bilinear")
    computed = {
        "class_ids": lambda: tf.argmax(logits, axis=-1, output_type=tf.int32),
        "probabilities": lambda: tf.nn.softmax(logits, axis=-1),
        "logits": lambda: logits,
    }
    return {name: computed[name]() for name in outputs}


def _check_encoded_images(image_bytes, max_image_size, max_request_pixels):
    """Assert ops refusing unreadable headers, images above `max_image_size`, JPEGs of
    more than `MAX_JPEG_SCANS` scans, and then requests above `max_request_pixels`."""

    def check(data):
        size, message = encoded_image_size(data, max_image_size, MAX_JPEG_SCANS)
        if max_image_size is not None:
            too_large = tf.logical_or(size[0] > max_image_size[0], size[1] > max_image_size[1])
            message = tf.where(
                tf.logical_and(tf.equal(message, ""), too_large),
                _too_large_message(size[0], size[1], max_image_size),
                message,
            )
        return message, size

    messages, sizes = tf.map_fn(
        check,
        image_bytes,
        fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([2], tf.int64)),
    )
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
    checks = [_refuse_unless(tf.logical_not(tf.reduce_any(refused)), message)]
    if max_request_pixels is not None:
        # Each side clamped, so that headers claiming 2**32-pixel sides cannot
        # overflow the int64 sum when there is no `max_image_size`.
        sides = tf.minimum(sizes, max_request_pixels + 1)
        with tf.control_dependencies(checks):
            pixels = tf.reduce_sum(sides[:, 0] * sides[:, 1])
            checks.append(_pixels_check(pixels, max_request_pixels))
    return checks


def decode_image_batch(
    image_bytes, max_image_size=None, max_batch_size=None, max_request_pixels=None
):
    """Decodes a batch of encoded images of one size into uint8 (B, H, W, 3).

    Args:
        image_bytes: string tensor (B,), each a PNG, JPEG, GIF (first frame),
            BMP or WebP file; grey and RGBA images are converted to RGB
            (except WebP, whose decoder refuses RGBA when asked for RGB).
        max_image_size: None (no limit), or the largest (height, width).
        max_batch_size: None (no limit), or the largest batch accepted.
        max_request_pixels: None (no limit), or the largest sum of height x
            width over the batch.

    With `max_image_size` or `max_request_pixels`, the images' sizes are
    read from their headers first (only PNG, JPEG, GIF, BMP and WebP are
    accepted then), and the batch is refused before any of them is decoded
    if a header cannot be read, if an image is too large, if a JPEG has more
    than `MAX_JPEG_SCANS` scans, or if the sizes add up to more than
    `max_request_pixels`. The batch size is checked before the headers.

    Returns:
        uint8 (B, H, W, 3) tensor. Raises `InvalidArgumentError` for bytes
        that are not an image, for images of different sizes and for a
        request beyond the limits (the message names the limit).
    """
    image_bytes = tf.ensure_shape(image_bytes, [None])
    checks = []
    if max_batch_size is not None:
        checks.append(_batch_check(tf.shape(image_bytes)[0], max_batch_size))
    if max_image_size is not None or max_request_pixels is not None:
        with tf.control_dependencies(checks):
            checks.extend(_check_encoded_images(image_bytes, max_image_size, max_request_pixels))
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


class RequestBound(typing.NamedTuple):
    """What `request_tensor_bound` found: at most `elements` in any tensor of a request."""

    elements: int
    rate: float | None  # elements per pixel ...
    margin: int | None  # ... of images grown by this many pixels per side
    explanation: str


def largest_request_tensor(model, shape, image_size=None, resize_images=False, outputs=OUTPUT_KEYS):
    """Elements of the largest tensor a request of `shape` creates, read from the traced graph.

    The serving computation (`segmentation_outputs`) is traced, not run, for
    uint8 images of the static shape (B, H, W, 3), and every tensor that
    depends on the images is measured (the weights are not: their size does
    not depend on the request). With static shapes the position attention's
    query blocks are unrolled with the same block size as the exported
    graph's loop computes at run time (`PositionAttention._block_size`), so
    the attention energy is measured as served.

    Args:
        model: the model the signatures run.
        shape: (B, H, W) of the request.
        image_size, resize_images, outputs: as `segmentation_outputs`.

    Returns:
        int, the number of elements.
    """
    spec = tf.TensorSpec([*shape, 3], tf.uint8)
    options = dict(image_size=image_size, resize_images=resize_images, outputs=outputs)
    function = tf.function(lambda images: segmentation_outputs(model, images, **options))
    with warnings.catch_warnings():
        # Keras warns of a softmax over one position (a probe of 1 x 1 pixel).
        warnings.simplefilter("ignore", UserWarning)
        graph = function.get_concrete_function(spec).graph
    pending = [op for op in graph.get_operations() if op.type == "Placeholder"]
    pending = [op for op in pending if op.outputs[0].dtype == tf.uint8]
    seen, largest = set(), 0
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        for tensor in op.outputs:
            if not tensor.shape.is_fully_defined():
                raise ValueError(
                    f"cannot bound the request's tensors: {op.name} has the shape {tensor.shape} "
                    f"for a request of shape {spec.shape}."
                )
            largest = max(largest, tensor.shape.num_elements())
            pending.extend(tensor.consumers())
        pending.extend(op._control_outputs)
    return largest


def request_tensor_bound(
    model,
    image_size=None,
    resize_images=False,
    outputs=OUTPUT_KEYS,
    batch_size=None,
    max_image_size=None,
    max_batch_size=None,
    max_request_pixels=None,
):
    """An upper bound on the elements of any tensor that one accepted request creates.

    The rule: every tensor of a request of B images of H x W pixels holds at
    most `rate * B * (H + margin) * (W + margin)` elements, where `rate` is
    the largest tensor per pixel of one image at the largest size the limits
    allow up to 1024 x 1024 pixels (traced: `largest_request_tensor`; beyond
    that size the graph's padding counts for less and the position
    attention's energy block stays at `energy_budget` elements, or
    block_size x N, so the figure per pixel does not grow), and `margin` the smallest
    number of pixels per side that makes the rule hold on square images of
    1, 9, 17, 33, 65 and 129 pixels, which meet every way the graph rounds
    sizes up (strided convolutions, Winograd tiles of 4 positions at 1/8 of
    the image, the sub-images of dilated convolutions: cells of up to 128
    pixels). Over the requests the limits accept (B <= max_batch_size,
    H x W within `max_image_size`, B x H x W <= max_request_pixels), with
    B x H <= min(B_max x H_max, P) as W >= 1 (and the same for W), that is
    at most

        rate * (P + margin * (min(B_max H_max, P) + min(B_max W_max, P)) + B_max margin^2).

    With a fixed `image_size` (no resizing), the one request shape at the
    largest batch the limits accept is traced instead: the exact figure.
    `tests/export/test_serving_limits.py` checks the rule on the traced
    graphs of odd, thin and batched requests.

    Args:
        model: the model the signatures run.
        image_size, resize_images, outputs: as `build_export_archive`.
        batch_size: None or the signatures' fixed batch size.
        max_image_size, max_batch_size, max_request_pixels: the limits.

    Returns:
        A `RequestBound` (`elements`, and the rule's `rate` and `margin`,
        None for a fixed `image_size`), or None when the limits do not bound
        a request's size (no pixel budget, and no batch or image size limit).
    """
    fixed = image_size is not None and not resize_images
    sides = image_size if fixed else max_image_size
    batch = batch_size or max_batch_size
    pixels = max_request_pixels
    if pixels is None:
        if batch is None or sides is None:
            return None
        pixels = batch * sides[0] * sides[1]
    batch = min(batch or pixels, pixels)  # every image holds at least one pixel
    sides = (min(sides[0], pixels), min(sides[1], pixels)) if sides else (pixels, pixels)
    shape_options = dict(image_size=image_size, resize_images=resize_images, outputs=outputs)
    if fixed:
        batch = min(batch, pixels // (sides[0] * sides[1]))
        if batch < 1:
            raise ValueError(
                f"`image_size` {tuple(image_size)} holds more pixels than `max_request_pixels` "
                f"{pixels}: every request would be refused."
            )
        elements = largest_request_tensor(model, (batch, *sides), **shape_options)
        return RequestBound(elements, None, None, f"{batch} images of {sides[0]}x{sides[1]}")
    # Traced at up to 1024 x 1024 pixels: a larger probe only lowers the per-pixel
    # figure (padding counts for less, the attention's energy block is capped),
    # and its unrolled attention blocks would take long to trace.
    probe_pixels = min(pixels, _RATE_PROBE_PIXELS)
    height = min(sides[0], math.isqrt(probe_pixels))
    width = min(sides[1], probe_pixels // height)
    rate = largest_request_tensor(model, (1, height, width), **shape_options) / (height * width)
    margin = 0
    for side in _MARGIN_PROBE_SIDES:
        if side <= min(sides):
            elements = largest_request_tensor(model, (1, side, side), **shape_options)
            margin = max(margin, math.ceil(math.sqrt(elements / rate)) - side)
    padded = (
        pixels
        + margin * (min(batch * sides[0], pixels) + min(batch * sides[1], pixels))
        + batch * margin**2
    )
    explanation = (
        f"{rate:.1f} elements per pixel (measured at {height}x{width}) over at most {padded} "
        f"pixels ({pixels} plus a margin of {margin} pixels per side of up to {batch} images)"
    )
    return RequestBound(math.ceil(rate * padded), rate, margin, explanation)


def _check_request_bound(model, **arguments):
    bound = request_tensor_bound(model, **arguments)
    if bound is not None and bound.elements > MAX_TENSOR_ELEMENTS:
        raise ValueError(
            f"these limits let one request create a tensor of up to {bound.elements} elements "
            f"({bound.explanation}), more than TensorFlow's {MAX_TENSOR_ELEMENTS}: pass a smaller "
            "`max_request_pixels` or `max_batch_size`."
        )
    return bound


def build_export_archive(
    model,
    batch_size=None,
    image_size=None,
    resize_images=False,
    include_logits=None,
    include_image_bytes=True,
    max_image_size=None,
    max_batch_size=None,
    classes=None,
    max_request_pixels=None,
    outputs=None,
):
    """A `keras.export.ExportArchive` with the serving signatures of `model`.

    Args:
        model: the Keras segmentation model (dict output with `"logits"`).
        batch_size: None (any) or a fixed batch size.
        image_size: None (any height and width) or (height, width): see
            `segmentation_outputs`.
        resize_images: see `segmentation_outputs`; needs `image_size`.
        include_logits: deprecated: `outputs` without `"logits"`.
        include_image_bytes: add the `serve_image_bytes` signature.
        max_image_size: None (no limit, the default here; `export_saved_model`
            defaults to `DEFAULT_MAX_IMAGE_SIZE`) or the largest (height,
            width) the signatures accept: see `decode_image_batch`.
        max_batch_size: None (no limit, the default here; `export_saved_model`
            defaults to `DEFAULT_MAX_BATCH_SIZE`) or the largest batch the
            signatures accept.
        classes: None, or a `DatasetInfo` of the model's classes
            (`models.classes.model_classes(model)`) for the `metadata`
            signature (see `export.metadata`).
        max_request_pixels: None (no limit, the default here;
            `export_saved_model` defaults to `DEFAULT_MAX_REQUEST_PIXELS`) or
            the largest sum of height x width over one request's images.
        outputs: what both serving signatures return: None (all of
            `OUTPUT_KEYS`) or some of them, e.g. `("class_ids",)`.

    When the limits bound a request's size, the largest tensor a request can
    create is bounded from them (`request_tensor_bound`), and limits under
    which it could exceed `MAX_TENSOR_ELEMENTS` raise `ValueError`.

    Returns:
        The `ExportArchive`, ready for `write_out`.
    """
    require_tensorflow_backend("SavedModel export")
    outputs = serving_output_keys(outputs, include_logits)
    image_size = _validate_image_size(image_size)
    max_image_size = _validate_image_size(max_image_size, "max_image_size")
    max_batch_size = _validate_max_batch_size(max_batch_size)
    max_request_pixels = _validate_positive_int(max_request_pixels, "max_request_pixels")
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
    limits = dict(
        max_image_size=max_image_size,
        max_batch_size=max_batch_size,
        max_request_pixels=max_request_pixels,
    )
    _check_request_bound(
        model,
        image_size=image_size,
        resize_images=resize_images,
        outputs=outputs,
        batch_size=batch_size,
        **limits,
    )
    options = dict(image_size=image_size, resize_images=resize_images, outputs=outputs, **limits)
    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoints track the variables they use, and tracking
    # the model as well saved each variable twice (its Keras wrapper and its tf.Variable).

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
    include_logits=None,
    include_image_bytes=True,
    verbose=False,
    max_image_size=DEFAULT_MAX_IMAGE_SIZE,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    optimize=True,
    dtype_policy=None,
    overwrite=False,
    max_request_pixels=DEFAULT_MAX_REQUEST_PIXELS,
    outputs=None,
    sliced_convs="auto",
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
        include_logits: deprecated: `outputs` without `"logits"`.
        include_image_bytes: add the `serve_image_bytes` signature.
        verbose: let Keras print the archive's endpoints.
        max_image_size: (height, width), default 4096 x 4096: both
            signatures refuse a larger image with `InvalidArgumentError`
            ("image of 12000x12000 pixels (height x width) exceeds the maximum
            4096x4096 of this model"); `serve_image_bytes` reads the size from
            the header and refuses before decoding any pixel, and then accepts
            only PNG, JPEG, GIF, BMP and WebP. None removes the limit (the
            headers are still read for `max_request_pixels`, unless it is
            None too). The model's activations grow with the pixels: pick
            the limits that the server's memory holds.
        max_batch_size: the largest number of images in one request,
            default `DEFAULT_MAX_BATCH_SIZE` (16); both signatures refuse a
            larger batch before decoding or running the model. None removes
            the limit.
        optimize: export `danet_keras.optimize_for_inference(model)`, the
            same function with fewer FLOPs (float32 outputs within 1e-4 of
            the logit range); False: the model as it is.
        dtype_policy: None: float32 compute, also for a model built under
            a mixed policy (trained with `mixed_float16` on a GPU, say; its
            weights are float32 already); or `"mixed_bfloat16"` for bfloat16
            compute (float32 outputs).
        overwrite: replace a SavedModel that danet-keras wrote at `path`
            earlier. Without it that is refused, and so is, always, a `path`
            that holds anything else (TF Serving's base folder of numbered
            versions, say: write to a new version folder such as `path/2`);
            see `danet_keras.utils.output_paths`.
        max_request_pixels: the largest sum of height x width over one
            request's images, default `DEFAULT_MAX_REQUEST_PIXELS` (1024 x
            2048, one Cityscapes frame); `serving_default` refuses a larger
            request from its shape before the model runs, `serve_image_bytes`
            from the images' headers before any of them is decoded. None
            removes the limit.
        outputs: what both serving signatures return: None (`class_ids`,
            `probabilities` and `logits`) or some of them; `("class_ids",)`
            keeps a REST response of a 1024 x 2048 frame at a few MB instead
            of hundreds (`benchmarks/response_size.py`).
        sliced_convs: with `optimize`, see `optimize_for_inference`:
            `"auto"` (default) runs large convolutions cut in filter slices
            or row bands where that was measured faster on this machine. The
            graph keeps the exporting machine's choice: export on the kind of
            CPU that serves, or pass None.

    Raises:
        ValueError: for limits under which a request could create a tensor of
            more than `MAX_TENSOR_ELEMENTS` elements (see
            `request_tensor_bound`), e.g. `max_batch_size=None` with a pixel
            budget: a request of a million 1x1 images would run the model a
            million times at its smallest size, all at once.

    Returns:
        `path`, as a string.
    """
    require_tensorflow_backend("SavedModel export")
    check_folder_artefact(path, SAVED_MODEL_KIND, overwrite)
    outputs = serving_output_keys(outputs, include_logits)
    classes = model_classes(model)
    archive = build_export_archive(
        inference_model(model, optimize, dtype_policy, sliced_convs=sliced_convs),
        image_size=image_size,
        resize_images=resize_images,
        outputs=outputs,
        include_image_bytes=include_image_bytes,
        max_image_size=max_image_size,
        max_batch_size=max_batch_size,
        classes=classes,
        max_request_pixels=max_request_pixels,
    )
    # A serving directory that a model server watches must never be half written.
    with folder_artefact(path, SAVED_MODEL_KIND, overwrite) as staging:
        archive.write_out(staging, verbose=verbose)
        write_labels_asset(staging, classes)
    return str(path)
