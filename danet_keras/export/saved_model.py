"""SavedModel export for TF Serving, built on `keras.export.ExportArchive`.

The artefact has two serving signatures (TF Model Garden conventions):

- `serving_default`: `images` uint8 [B, H, W, 3] -> `class_ids` int32
  [B, H, W], `probabilities` float32 [B, H, W, K] and, unless disabled,
  `logits` float32 [B, H, W, K].
- `serve_image_bytes`: `image_bytes` string [B], each a PNG, JPEG, GIF, BMP
  or WebP file (TF Serving's REST API takes them as `{"b64": ...}`) -> the same
  outputs at the images' size. All images of one request must have the same
  height and width; send differently sized images in separate requests.

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

import tensorflow as tf

SERVING_DEFAULT = "serving_default"
SERVE_IMAGE_BYTES = "serve_image_bytes"
IMAGES_KEY = "images"
IMAGE_BYTES_KEY = "image_bytes"
OUTPUT_KEYS = ("class_ids", "probabilities", "logits")
DEFAULT_MAX_IMAGE_SIZE = (4096, 4096)

# A GIF is walked through this many bytes per tf.while_loop step (see
# `_gif_size`): 12 rounds of pointer jumping follow 2**12 hops, and every hop
# moves forward at least one byte.
GIF_WINDOW = 4096
_GIF_JUMP_ROUNDS = 12
UNKNOWN_FORMAT_MESSAGE = (
    "Unknown image file format. One of JPEG, PNG, GIF, BMP, WebP required "
    "(this model refuses images whose size it cannot read from the header)."
)


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


# --- Image sizes from encoded headers, without decoding pixels -------------------------------
# Magic bytes as tf.io.decode_image classifies them (DecodeImageV2), in its order.
_JPEG, _PNG, _GIF, _BMP, _WEBP = 1, 2, 3, 4, 5
_HEADER_BYTES = 32


def _header_bytes(data):
    """The first 32 bytes of `data` as int64 (32,), zero-padded if `data` is shorter."""
    head = tf.strings.join([tf.strings.substr(data, 0, _HEADER_BYTES), b"\0" * _HEADER_BYTES])
    head = tf.strings.substr(head, 0, _HEADER_BYTES)
    return tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)


def _uint(head, start, count, big_endian):
    """Unsigned integer of `count` bytes of `head` from `start`."""
    order = range(count) if big_endian else reversed(range(count))
    value = tf.constant(0, tf.int64)
    for index in order:
        value = value * 256 + head[start + index]
    return value


def _image_format(head, length):
    def bytes_are(start, magic):
        # `head` is zero-padded and no magic number holds a zero byte.
        expected = tf.constant(list(magic), tf.int64)
        return tf.reduce_all(tf.equal(head[start : start + len(magic)], expected))

    def starts_with(magic):
        return bytes_are(0, magic)

    webp = tf.logical_and(tf.logical_and(starts_with(b"RIFF"), length > 12), bytes_are(8, b"WEBP"))
    index = tf.constant(0)
    # Applied last to first, so that the first match wins, as in the decoder.
    for code, matches in reversed(
        [
            (_JPEG, starts_with(b"\xff\xd8\xff")),
            (_PNG, starts_with(b"\x89PNG\r\n\x1a\n")),
            (_GIF, starts_with(b"GIF8")),
            (_BMP, starts_with(b"BM")),
            (_WEBP, webp),
        ]
    ):
        index = tf.where(matches, code, index)
    return index


def _result(height, width, message=""):
    return (
        tf.stack([tf.cast(height, tf.int64), tf.cast(width, tf.int64)]),
        tf.convert_to_tensor(message, tf.string),
    )


def _png_size(head, length):
    # Signature (8), IHDR chunk length (4) and type (4), width and height
    # (big-endian uint32); libpng refuses a PNG whose first chunk is not IHDR.
    ihdr = tf.equal(_uint(head, 12, 4, True), _fourcc(b"IHDR"))
    readable = tf.logical_and(ihdr, length >= 24)
    return _result(
        _uint(head, 20, 4, True),
        _uint(head, 16, 4, True),
        tf.where(readable, "", "PNG header truncated or without IHDR chunk"),
    )


def _jpeg_size(data):
    # libjpeg's own header parser (jpeg_read_header: markers up to SOS, the
    # first SOFn gives the size); it decodes no pixel, and raises
    # InvalidArgumentError "Invalid JPEG data" for a header it cannot read.
    shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
    return _result(shape[0], shape[1])


def _bmp_size(head, length):
    # BITMAPINFOHEADER: width and height int32 little-endian at 18 and 22; a
    # negative height means top-down rows. The decoder reads these offsets
    # whatever the header size says.
    def int32(start):
        value = _uint(head, start, 4, False)
        return tf.where(value >= 2**31, value - 2**32, value)

    return _result(
        tf.abs(int32(22)),
        int32(18),
        tf.where(length >= 26, "", "BMP header truncated"),
    )


def _webp_size(head, length):
    # RIFF, size, WEBP, then the first chunk: "VP8 " (lossy: 14-bit sizes in the
    # key frame header at 26 and 28), "VP8L" (lossless: 14-bit width - 1 and
    # height - 1 packed after the 0x2f signature at 20) or "VP8X" (extended:
    # 24-bit canvas width - 1 and height - 1 at 24 and 27; libwebp refuses a
    # still image whose bitstream size differs from the canvas).
    chunk = _uint(head, 12, 4, True)
    lossy = tf.equal(chunk, _fourcc(b"VP8 "))
    lossless = tf.equal(chunk, _fourcc(b"VP8L"))
    extended = tf.equal(chunk, _fourcc(b"VP8X"))
    packed = _uint(head, 21, 4, False)
    height = tf.where(
        lossy,
        _uint(head, 28, 2, False) % 2**14,
        tf.where(lossless, packed // 2**14 % 2**14 + 1, _uint(head, 27, 3, False) + 1),
    )
    width = tf.where(
        lossy,
        _uint(head, 26, 2, False) % 2**14,
        tf.where(lossless, packed % 2**14 + 1, _uint(head, 24, 3, False) + 1),
    )
    known = tf.logical_or(lossy, tf.logical_or(lossless, extended))
    message = tf.where(
        known,
        tf.where(length >= 30, "", "WebP header truncated"),
        "WebP header not understood: VP8, VP8L or VP8X chunk expected",
    )
    return _result(height, width, message)


def _fourcc(name):
    return int.from_bytes(name, "big")


def _gif_size(data, length, max_image_size):
    """The size of the decoded GIF, and whether its frames fit in memory.

    TensorFlow decodes a GIF onto a canvas as tall as its tallest frame and as
    wide as its widest (the logical screen size is ignored), and giflib first
    keeps every frame in memory at one byte a pixel. So every image descriptor
    is read, walking the blocks: a header, a logical screen descriptor and
    global colour table, then records up to the trailer (0x3b): extensions
    (0x21, label, sub-blocks) and images (0x2c, 9-byte descriptor, local
    colour table, LZW code size, sub-blocks). Each sub-block is a length byte
    and that many bytes; a zero length ends the sequence.

    The walk is a chain of hops between (position, in-record or
    in-sub-blocks) nodes, and one hop per tf.while_loop step would cost tens
    of microseconds a hop: a file of 1-byte sub-blocks would buy seconds of CPU
    for a few hundred kilobytes. Instead each step takes the next
    `GIF_WINDOW` bytes, computes every node's hop in them at once, and
    composes the hops by pointer jumping (at most `_GIF_JUMP_ROUNDS` rounds,
    until the first node's hops leave the window), adding up frame pixels and
    the largest frame height and width along the way. Memory stays at a few
    times `GIF_WINDOW` and time is linear in the file's length: measured on 2
    busy CPUs, ~1 ms a window for an encoder's GIF, and ~2.5 ms a window (0.35
    s for 140 KB; 10x the decoding) for a hostile file of 1-byte sub-blocks.
    """
    window_size = GIF_WINDOW
    end = tf.cast(length, tf.int64)
    # Zero-padded: every window and its 10 bytes of lookahead lie inside `raw`.
    raw = tf.io.decode_raw(tf.strings.join([data, b"\0" * (window_size + 16)]), tf.uint8)
    offsets = tf.range(window_size, dtype=tf.int64)
    zeros = tf.zeros([window_size], tf.int64)

    def colour_table(flags):
        return tf.where(flags >= 128, 3 * 2 ** (flags % 8 + 1), 0)

    def walk_window(start, in_blocks):
        """Follows the hops from (start, in_blocks) until they leave the window or stop."""
        window = tf.cast(tf.slice(raw, [start], [window_size + 10]), tf.int64)

        def byte(offset):
            return window[offset : offset + window_size]

        here = start + offsets
        value = byte(0)
        inside_file = here < end
        # Node k < window_size: a record starts at start + k; node window_size
        # + k: a sub-block length byte. A hop's target is coded as position *
        # 2 + (1 if in sub-blocks). A node that ends the walk (the trailer,
        # an unknown record, the end of the file) hops to itself.
        extension = tf.logical_and(inside_file, tf.equal(value, 0x21))
        image = tf.logical_and(inside_file, tf.equal(value, 0x2C))
        record_next = tf.where(
            extension,
            here + 2,
            tf.where(image, here + 11 + colour_table(byte(9)), here),
        )
        record_target = 2 * record_next + tf.cast(tf.logical_or(extension, image), tf.int64)
        block_target = tf.where(
            inside_file,
            2 * (here + 1 + value) + tf.cast(value > 0, tf.int64),
            2 * here + 1,
        )
        frame_width = tf.where(image, byte(5) + 256 * byte(6), 0)
        frame_height = tf.where(image, byte(7) + 256 * byte(8), 0)
        target = tf.concat([record_target, block_target], 0)
        pixels = tf.concat([frame_width * frame_height, zeros], 0)
        heights = tf.concat([frame_height, zeros], 0)
        widths = tf.concat([frame_width, zeros], 0)
        first = in_blocks * window_size

        def jump(round_, target, pixels, heights, widths):
            # Composes each node's hops with those of its target, while the
            # target is in this window.
            position, target_in_blocks = target // 2, target % 2
            in_window = position < start + window_size
            node = tf.where(in_window, target_in_blocks * window_size + position - start, 0)
            return (
                round_ + 1,
                tf.where(in_window, tf.gather(target, node), target),
                tf.where(in_window, pixels + tf.gather(pixels, node), pixels),
                tf.where(in_window, tf.maximum(heights, tf.gather(heights, node)), heights),
                tf.where(in_window, tf.maximum(widths, tf.gather(widths, node)), widths),
            )

        def unresolved(round_, target, *_):
            # Until the first node's hops leave the window or reach a node that
            # hops to itself: 4 or 5 rounds for an encoder's 255-byte sub-blocks.
            position = target[first] // 2
            in_window = position < start + window_size
            node = tf.where(in_window, target[first] % 2 * window_size + position - start, 0)
            stopped = tf.logical_and(in_window, tf.equal(target[node], target[first]))
            resolved = tf.logical_or(stopped, tf.logical_not(in_window))
            return tf.logical_and(round_ < _GIF_JUMP_ROUNDS, tf.logical_not(resolved))

        _, target, pixels, heights, widths = tf.while_loop(
            unresolved, jump, (tf.constant(0), target, pixels, heights, widths)
        )
        return target[first], pixels[first], heights[first], widths[first]

    def walking(start, in_blocks, stopped, *_):
        return tf.logical_and(tf.logical_not(stopped), start < end)

    def step(start, in_blocks, stopped, frame_pixels, height, width):
        target, pixels, frame_height, frame_width = walk_window(start, in_blocks)
        # Still in the window after 2**rounds >= window_size hops: the walk stopped.
        return (
            target // 2,
            target % 2,
            target // 2 < start + window_size,
            frame_pixels + pixels,
            tf.maximum(height, frame_height),
            tf.maximum(width, frame_width),
        )

    zero = tf.constant(0, tf.int64)
    first_record = 13 + colour_table(tf.cast(raw[10], tf.int64))
    # Every step moves `window_size` bytes on, or stops.
    _, _, _, frame_pixels, height, width = tf.while_loop(
        walking,
        step,
        (first_record, zero, tf.constant(False), zero, zero, zero),
        maximum_iterations=length // window_size + 2,
    )
    message = tf.constant("")
    if max_image_size is not None:
        # All frames together may hold as many bytes as one RGB image at the
        # maximum size (3 x height x width).
        max_frame_pixels = 3 * max_image_size[0] * max_image_size[1]
        message = tf.where(
            frame_pixels > max_frame_pixels,
            tf.strings.join(
                [
                    "GIF frames of ",
                    _as_string(frame_pixels),
                    f" pixels in all exceed the maximum {max_frame_pixels} "
                    f"(3 x {max_image_size[0]}x{max_image_size[1]}) of this model",
                ]
            ),
            message,
        )
    return _result(height, width, message)


def encoded_image_size(data, max_image_size=None):
    """The (height, width) an encoded image decodes to, read from its header.

    Runs in the graph with string ops only: no pixel is decoded, and the work
    is bounded by the header (PNG, BMP, WebP: 32 bytes; JPEG: the markers up
    to the first scan) or, for GIF, linear in the file's length.

    Args:
        data: scalar string tensor, an encoded PNG, JPEG, GIF, BMP or WebP.
        max_image_size: None, or the (height, width) limit; for GIF it also
            bounds all frames together (see `_gif_size`).

    Returns:
        (size, message): int64 (2,) height and width, and a string that is
        empty when the header was read and is otherwise the reason it was not
        (unknown format, truncated header, GIF frames too large together); an
        unreadable JPEG header raises `InvalidArgumentError` instead.
    """
    length = tf.strings.length(data)
    head = _header_bytes(data)
    branches = [
        lambda: _result(0, 0, tf.where(length > 0, UNKNOWN_FORMAT_MESSAGE, "image_bytes is empty")),
        lambda: _jpeg_size(data),
        lambda: _png_size(head, length),
        lambda: _gif_size(data, length, max_image_size),
        lambda: _bmp_size(head, length),
        lambda: _webp_size(head, length),
    ]
    return tf.switch_case(_image_format(head, length), branches)


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

    Returns:
        The `ExportArchive`, ready for `write_out`.
    """
    import keras

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

    Returns:
        `path`, as a string.
    """
    archive = build_export_archive(
        model,
        image_size=image_size,
        resize_images=resize_images,
        include_logits=include_logits,
        include_image_bytes=include_image_bytes,
        max_image_size=max_image_size,
        max_batch_size=max_batch_size,
    )
    from danet_keras.atomic_io import atomic_directory

    # A serving directory that a model server watches must never be half written.
    with atomic_directory(path) as staging:
        archive.write_out(staging, verbose=verbose)
    return str(path)
