"""Image sizes read from encoded headers inside a TensorFlow graph, before any pixel is decoded.

`encoded_image_size` tells the (height, width) that an encoded PNG, JPEG,
GIF, BMP or WebP decodes to, with string ops only (PNG IHDR, JPEG SOFn through
`tf.io.extract_jpeg_shape`, every GIF frame descriptor, BMP and WebP
headers), so a serving signature can refuse an oversized image for the cost
of its header. It also counts a JPEG's scans (`jpeg_scan_count`), whose
number the decoder does not bound. Used by `danet_keras.export.saved_model`.
"""

import tensorflow as tf

# Magic bytes as tf.io.decode_image classifies them (DecodeImageV2), in its order.
_JPEG, _PNG, _GIF, _BMP, _WEBP = 1, 2, 3, 4, 5

# A GIF is walked through this many bytes per tf.while_loop step (see
# `_gif_size`): 12 rounds of pointer jumping follow 2**12 hops, and every hop
# moves forward at least one byte.
GIF_WINDOW = 4096
_GIF_JUMP_ROUNDS = 12
UNKNOWN_FORMAT_MESSAGE = (
    "Unknown image file format. One of JPEG, PNG, GIF, BMP, WebP required "
    "(this model refuses images whose size it cannot read from the header)."
)


_HEADER_BYTES = 32

# The most scans (SOS markers) a JPEG may have. libjpeg decodes a progressive
# JPEG by passing over the whole image's coefficients once per scan, and
# neither it nor TensorFlow limits the number of scans: a file of a few
# hundred kilobytes with tens of thousands of tiny scans costs minutes of
# CPU (measured in tests/export/test_serving_limits.py). Encoders write few:
# 1 for a baseline JPEG, 10 for libjpeg's (and Pillow's) progressive script
# of a colour image, 6 for a grey one; an embedded JPEG thumbnail (EXIF) adds
# its own. 100 leaves ten times that for other encoders' scripts, and caps
# the decoding at 100 passes over an image that the size limits bound.
MAX_JPEG_SCANS = 100


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


def jpeg_scan_count(data):
    """The number of scans of an encoded JPEG: its SOS markers (bytes 0xFF 0xDA).

    Inside entropy-coded data a 0xFF byte is always followed by 0x00 (byte
    stuffing) or a restart marker, so every 0xFF 0xDA pair starts a scan,
    except inside the payload of another marker segment (an EXIF thumbnail's
    own scans, a comment): those are counted too, which can only refuse more.
    String and raw ops only, linear in the file's length; nothing is decoded.

    Args:
        data: scalar string tensor.

    Returns:
        int64 scalar.
    """
    raw = tf.io.decode_raw(data, tf.uint8)
    markers = tf.logical_and(tf.equal(raw[:-1], 0xFF), tf.equal(raw[1:], 0xDA))
    return tf.reduce_sum(tf.cast(markers, tf.int64))


def _jpeg_size(data, max_jpeg_scans):
    # libjpeg's own header parser (jpeg_read_header: markers up to SOS, the
    # first SOFn gives the size); it decodes no pixel, and raises
    # InvalidArgumentError "Invalid JPEG data" for a header it cannot read.
    shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
    message = tf.constant("")
    if max_jpeg_scans is not None:
        scans = jpeg_scan_count(data)
        message = tf.where(
            scans > max_jpeg_scans,
            tf.strings.join(
                [
                    "JPEG of ",
                    tf.strings.as_string(scans),
                    f" scans exceeds the maximum {max_jpeg_scans} scans of this model "
                    "(each scan is one more pass of the decoder over the whole image)",
                ]
            ),
            message,
        )
    return _result(shape[0], shape[1], message)


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
                    tf.strings.as_string(frame_pixels),
                    f" pixels in all exceed the maximum {max_frame_pixels} "
                    f"(3 x {max_image_size[0]}x{max_image_size[1]}) of this model",
                ]
            ),
            message,
        )
    return _result(height, width, message)


def encoded_image_size(data, max_image_size=None, max_jpeg_scans=None):
    """The (height, width) an encoded image decodes to, read from its header.

    Runs in the graph with string ops only: no pixel is decoded, and the work
    is bounded by the header (PNG, BMP, WebP: 32 bytes; JPEG: the markers up
    to the first scan, and with `max_jpeg_scans` one pass over the file to
    count its scans) or, for GIF, linear in the file's length.

    Args:
        data: scalar string tensor, an encoded PNG, JPEG, GIF, BMP or WebP.
        max_image_size: None, or the (height, width) limit; for GIF it also
            bounds all frames together (see `_gif_size`).
        max_jpeg_scans: None, or the most scans a JPEG may have (see
            `MAX_JPEG_SCANS` and `jpeg_scan_count`).

    Returns:
        (size, message): int64 (2,) height and width, and a string that is
        empty when the header was read and is otherwise the reason it was not
        (unknown format, truncated header, GIF frames too large together, a
        JPEG of too many scans); an unreadable JPEG header raises
        `InvalidArgumentError` instead.
    """
    length = tf.strings.length(data)
    head = _header_bytes(data)
    branches = [
        lambda: _result(0, 0, tf.where(length > 0, UNKNOWN_FORMAT_MESSAGE, "image_bytes is empty")),
        lambda: _jpeg_size(data, max_jpeg_scans),
        lambda: _png_size(head, length),
        lambda: _gif_size(data, length, max_image_size),
        lambda: _bmp_size(head, length),
        lambda: _webp_size(head, length),
    ]
    return tf.switch_case(_image_format(head, length), branches)
