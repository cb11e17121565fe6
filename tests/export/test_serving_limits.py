"""A hostile request cannot exhaust the SavedModel's server.

`export_saved_model`'s limits (by default images of at most 4096 x 4096, 16
images and 1024 x 2048 pixels in all per request, JPEGs of at most 100 scans)
make both signatures refuse larger requests; `serve_image_bytes` reads the
sizes from the headers and refuses before decoding a pixel. The checks that measure time and
memory, the concurrent burst and the fuzzing each run in a fresh process that
loads the SavedModel (without danet_keras), so that a crash, a hang or a peak
of memory is that process's, not pytest's.
"""

import base64
import io
import json
import random
import struct
import subprocess
import textwrap
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from danet_keras.cli.main import main
from danet_keras.export import build_export_archive, synthetic_images
from danet_keras.export.image_headers import MAX_JPEG_SCANS, jpeg_scan_count
from danet_keras.export.saved_model import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_IMAGE_SIZE,
    DEFAULT_MAX_REQUEST_PIXELS,
    MAX_TENSOR_ELEMENTS,
    largest_request_tensor,
    request_tensor_bound,
)
from danet_keras.inference.optimize import inference_model

from ..numerics import assert_outputs_match
from .conftest import NUM_CLASSES, run_script

MAX_BATCH_SIZE = DEFAULT_MAX_BATCH_SIZE
LIMIT_MESSAGE = "exceeds the maximum 4096x4096 of this model"
BUDGET_MESSAGE = (
    "pixels (the sum of height x width over its images) exceeds the maximum 2097152 of this model"
)

# Helpers shared by the scripts run in fresh processes: the process's resident
# memory now and its peak since the last reset (Linux /proc; ru_maxrss if the
# peak cannot be reset).
MEMORY_HELPERS = textwrap.dedent(
    """
    import resource


    def status_mb(key):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        raise KeyError(key)


    def max_rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


    def start_peak():
        \"\"\"(resident MB now, a function giving the peak MB since now).\"\"\"
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # the peak (VmHWM) starts again at VmRSS
            return status_mb("VmRSS"), lambda: status_mb("VmHWM")
        except OSError:
            return max_rss_mb(), max_rss_mb
    """
)

OVERSIZE_SCRIPT = MEMORY_HELPERS + textwrap.dedent(
    """
    import json
    import sys
    import time

    import tensorflow as tf

    path, huge_file, small_file, copies = sys.argv[1:5]
    serve = tf.saved_model.load(path).signatures["serve_image_bytes"]
    with open(small_file, "rb") as file:
        small = tf.constant([file.read()])
    with open(huge_file, "rb") as file:
        huge = tf.constant([file.read()] * int(copies))  # a request of `copies` images
    serve(image_bytes=small)  # warm-up: kernels, thread pools, the model's buffers
    results = []
    for attempt in range(2):
        baseline, peak = start_peak()
        start = time.perf_counter()
        try:
            serve(image_bytes=huge)
            message = None
        except tf.errors.InvalidArgumentError as error:
            message = error.message
        seconds = time.perf_counter() - start
        results.append(
            {"seconds": seconds, "growth_mb": peak() - baseline, "message": message}
        )
    # The process lives on and serves the next request.
    served = serve(image_bytes=small)["class_ids"].shape.as_list()
    print(json.dumps({"refusals": results, "served_after": served}))
    """
)

SERVE_SCRIPT = MEMORY_HELPERS + textwrap.dedent(
    """
    import json
    import sys
    import time

    import tensorflow as tf

    path, batch, height, width = sys.argv[1], *map(int, sys.argv[2:5])
    serve = tf.saved_model.load(path).signatures["serving_default"]
    images = tf.zeros([batch, height, width, 3], tf.uint8)
    start = time.perf_counter()
    class_ids = serve(images=images)["class_ids"]
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "shape": class_ids.shape.as_list(),
                "seconds": seconds,
                "peak_rss_mb": status_mb("VmHWM"),
                "max_rss_mb": max_rss_mb(),
            }
        )
    )
    """
)

BURST_SCRIPT = MEMORY_HELPERS + textwrap.dedent(
    """
    import json
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import tensorflow as tf

    path, inputs_file, outputs_file, num_requests, workers = sys.argv[1:6]
    loaded = tf.saved_model.load(path)
    requests = []
    for images in np.load(inputs_file).values():
        requests.append(("serving_default", {"images": tf.constant(images)}))
        png = tf.stack([tf.io.encode_png(image) for image in images])
        requests.append(("serve_image_bytes", {"image_bytes": png}))


    def serve(index):
        signature, inputs = requests[index]
        return {k: v.numpy() for k, v in loaded.signatures[signature](**inputs).items()}


    sequential = [serve(index) for index in range(len(requests))]


    def check(number):
        # Keeps only the answers that differ from the sequential one, so that
        # the memory measured is the server's, not the answers'.
        index = number % len(requests)
        answer = serve(index)
        identical = all(np.array_equal(answer[k], sequential[index][k]) for k in answer)
        return index, (None if identical else answer)


    baseline, peak = start_peak()
    start = time.perf_counter()
    with ThreadPoolExecutor(int(workers)) as pool:
        answers = list(pool.map(check, range(int(num_requests))))
    seconds = time.perf_counter() - start
    growth = peak() - baseline
    saved = {}
    for index, answer in enumerate(sequential):
        saved.update({f"sequential/{index}/{k}": v for k, v in answer.items()})
    differing = [(n, index, a) for n, (index, a) in enumerate(answers) if a is not None]
    for number, index, answer in differing:
        saved.update({f"burst/{number}/{index}/{k}": v for k, v in answer.items()})
    np.savez(outputs_file, **saved)
    print(
        json.dumps(
            {
                "requests": len(answers),
                "identical": len(answers) - len(differing),
                "seconds": seconds,
                "baseline_mb": baseline,
                "growth_mb": growth,
            }
        )
    )
    """
)

FUZZ_SCRIPT = textwrap.dedent(
    """
    import base64
    import collections
    import json
    import re
    import sys

    import tensorflow as tf

    path, inputs_file, progress_file, num_classes, max_height, max_width = sys.argv[1:7]
    num_classes, max_height, max_width = int(num_classes), int(max_height), int(max_width)
    serve = tf.saved_model.load(path).signatures["serve_image_bytes"]
    with open(inputs_file) as file:
        inputs = json.load(file)
    counts = collections.defaultdict(lambda: {"answered": 0, "refused": 0})


    def reason(message):
        # Who refused (an Assert of the header check, or an op: a decoder or
        # ExtractJpegShape) and the gist, without node names and numbers.
        for line in message.splitlines():
            line = line.strip()
            if line and not line.startswith(("Graph execution", "Detected at", "<stack", "[[")):
                break
        checked = line.startswith("assertion failed: [")
        line = re.sub(r"^assertion failed: \\[image_bytes\\[\\d+\\]: ", "", line)
        line = re.sub(r"(?<!VP)-?\\d+", "N", line.split(" [Op:")[0].rstrip("]"))
        return ("assert: " if checked else "op: ") + " ".join(line.split()[:7])


    messages = collections.Counter()
    other = []
    for index, item in enumerate(inputs):
        # Names the input if this process dies on it.
        with open(progress_file, "w") as progress:
            progress.write(f"{index} {item['kind']} {item['format']}")
        key = f"{item['kind']}/{item['format']}"
        data = base64.b64decode(item["data"])
        try:
            out = serve(image_bytes=tf.constant([data]))
        except tf.errors.InvalidArgumentError as error:
            counts[key]["refused"] += 1
            messages[reason(error.message)] += 1
            continue
        except Exception as error:  # anything else is a failure of the serving path
            other.append(f"{key} #{index}: {type(error).__name__}: {error}"[:500])
            continue
        ids, probabilities = out["class_ids"].shape, out["probabilities"].shape
        height, width = ids[1:] if len(ids) == 3 else (0, 0)
        if (
            len(ids) != 3
            or ids[0] != 1
            or not (1 <= height <= max_height and 1 <= width <= max_width)
            or tuple(probabilities) != (1, height, width, num_classes)
            or tuple(out["logits"].shape) != tuple(probabilities)
        ):
            other.append(f"{key} #{index}: shapes {ids}, {probabilities}")
            continue
        counts[key]["answered"] += 1
    print(json.dumps({"counts": counts, "messages": messages, "other": other}))
    """
)


@pytest.mark.parametrize("flag", ["--max-batch-size", "--max-request-pixels"])
@pytest.mark.parametrize("value", ["0", "-3", "2.5", "1e6", "many", ""])
def test_cli_refuses_nonsense_limits(tmp_path, capsys, flag, value):
    # Refused before the model file is read (it does not exist).
    out = tmp_path / "sm"
    arguments = ["export", "--model", str(tmp_path / "m.keras"), "--format", "saved_model"]
    assert main(arguments + ["--output", str(out), flag, value]) == 2
    captured = capsys.readouterr()
    expected = f"danet-keras export: error: {flag} takes a positive integer, got {value!r}."
    assert captured.err.strip() == expected
    assert not out.exists()


def test_cli_refuses_limits_for_other_formats(tmp_path, capsys):
    arguments = ["export", "--model", "m.keras", "--format", "onnx", "-o", str(tmp_path / "x")]
    assert main(arguments + ["--max-request-pixels", "1000"]) == 2
    assert "--max-request-pixels applies to --format saved_model only" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_limits_reach_the_signatures(small_danet, tmp_path, test_images):
    model_file = tmp_path / "danet.keras"
    small_danet.save(model_file)
    out = tmp_path / "sm"
    arguments = ["export", "--model", str(model_file), "--format", "saved_model", "-o", str(out)]
    limits = ["--max-batch-size", "2", "--max-request-pixels", "10000"]
    assert main(arguments + limits + ["--num-parity-images", "0"]) == 0
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    images = test_images[0]  # 2 x 64 x 96 = 12288 pixels
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds the maximum 10000 of this"):
        serve(images=tf.constant(images))
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds the maximum 2 of this"):
        serve(images=tf.zeros((3, 8, 8, 3), tf.uint8))
    assert serve(images=tf.constant(images[:1]))["class_ids"].shape == (1, *images.shape[1:3])


# --- Encoded images --------------------------------------------------------------------------


def encode(image, image_format, **options):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(height, width):
    """A valid all-black RGB PNG, compressed row by row (12000 x 12000: 420 KB, 1-4 s)."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter type 0, then the pixels
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def jpeg_sof_offset(data):
    """Offset of the first SOFn marker segment of a JPEG (its height is at +5, width at +7)."""
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return offset
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    raise ValueError("no SOF marker")


def with_bytes(data, offset, packed):
    return data[:offset] + packed + data[offset + len(packed) :]


def jpeg_claiming(data, height, width):
    return with_bytes(data, jpeg_sof_offset(data) + 5, struct.pack(">HH", height, width))


def png_claiming(data, height, width):
    # Patches IHDR (its CRC then no longer matches: the header check comes first).
    return with_bytes(data, 16, struct.pack(">II", width, height))


def bmp_claiming(data, height, width):
    return with_bytes(data, 18, struct.pack("<ii", width, height))


def gif_with_frames(*frames, comment_blocks=0):
    """A GIF with an 8 x 8 logical screen and image descriptors of (height, width) each.

    The frames carry no pixel data (an empty LZW stream): the header check
    must refuse the file before giflib reads it. A comment extension of
    `comment_blocks` 1-byte sub-blocks comes first (the walk's worst case).
    """
    screen = b"GIF89a" + struct.pack("<HHBBB", 8, 8, 0, 0, 0)
    comment = b"\x21\xfe" + b"\x01c" * comment_blocks + b"\x00" if comment_blocks else b""
    descriptors = b"".join(
        b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x00"
        for height, width in frames
    )
    return screen + comment + descriptors + b"\x3b"


def reference_gif_walk(data):
    """(largest frame height, largest frame width, frame pixels), walking the blocks in Python."""
    padded = data + bytes(16)

    def colour_table(flags):
        return 3 << ((flags & 7) + 1) if flags & 0x80 else 0

    position, in_blocks, height, width, pixels = 13 + colour_table(padded[10]), False, 0, 0, 0
    while position < len(data):
        value = padded[position]
        if in_blocks:
            position, in_blocks = position + 1 + value, value > 0
        elif value == 0x21:
            position, in_blocks = position + 2, True
        elif value == 0x2C:
            frame_width, frame_height = struct.unpack("<HH", padded[position + 5 : position + 9])
            height, width = max(height, frame_height), max(width, frame_width)
            pixels += frame_width * frame_height
            position, in_blocks = position + 11 + colour_table(padded[position + 9]), True
        else:
            break
    return height, width, pixels


def webp_claiming(height, width):
    """An extended (VP8X) WebP header with a canvas of height x width."""
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def jpeg_with_extra_scans(height, width, extra_scans):
    """A black progressive JPEG (Pillow, 4:2:0) followed by `extra_scans` more scans.

    Each added scan codes the AC band 1..63 of the luma (Ah = Al = 0, which
    libjpeg accepts again and again) as end-of-band runs: one 15-bit code
    per 32767 blocks, 12 to 14 bytes a scan, and each makes the decoder pass
    over every luma block. The scans use their own AC table (one symbol,
    0xE0: an end-of-band run of 2**14 plus 14 bits).
    """
    data = encode(np.zeros((height, width, 3), np.uint8), "JPEG", progressive=True, quality=90)
    assert data.endswith(b"\xff\xd9")
    table = b"\x11" + bytes([1] + [0] * 15) + b"\xe0"  # AC table 1: code "0" -> 0xE0
    dht = b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table
    blocks = (height + 15) // 16 * 2 * ((width + 15) // 16 * 2)  # luma blocks, whole MCUs
    bits = ""
    while blocks > 0:
        run = min(max(blocks, 2**14), 2**15 - 1)
        bits += "0" + format(run - 2**14, "014b")
        blocks -= run
    bits += "1" * (-len(bits) % 8)
    entropy = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    entropy = entropy.replace(b"\xff", b"\xff\x00")  # byte stuffing
    # SOS: 1 component (id 1, DC table 0, AC table 1), Ss = 1, Se = 63, Ah = Al = 0.
    scan = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x01\x01\x3f\x00" + entropy
    return data[:-2] + dht + scan * extra_scans + b"\xff\xd9"


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_image():
    return synthetic_images(1, (32, 48), seed=3)[0]


# --- Export arguments ------------------------------------------------------------------------


def test_default_maximum_is_4096():
    assert DEFAULT_MAX_IMAGE_SIZE == (4096, 4096)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(max_image_size=(0, 10)), "max_image_size"),
        (dict(max_image_size=(10,)), "max_image_size"),
        (dict(max_image_size=(10.0, 10)), "max_image_size"),
        (dict(max_image_size=(True, 10)), "max_image_size"),
        (dict(max_batch_size=0), "max_batch_size"),
        (dict(max_batch_size=2.5), "max_batch_size"),
        (dict(image_size=(256, 256), max_image_size=(128, 128)), "exceeds `max_image_size`"),
        (dict(batch_size=4, max_batch_size=2), "exceeds `max_batch_size`"),
    ],
)
def test_export_refuses_bad_limits(small_danet, arguments, message):
    with pytest.raises(ValueError, match=message):
        build_export_archive(small_danet, **arguments)


@pytest.mark.parametrize(
    "flag, expected",
    [
        ([], {}),
        (["--max-image-size", "128x96"], {"max_image_size": (128, 96)}),
        (["--max-image-size", "none"], {"max_image_size": None}),
        (["--max-image-size", "256"], {"max_image_size": (256, 256)}),
        (["--max-batch-size", "4"], {"max_batch_size": 4}),
        (["--max-request-pixels", "100000"], {"max_request_pixels": 100000}),
        (
            ["--max-batch-size", "2", "--max-request-pixels", "5000"],
            {"max_batch_size": 2, "max_request_pixels": 5000},
        ),
    ],
)
def test_cli_limits_reach_the_export(monkeypatch, tmp_path, flag, expected):
    import danet_keras.apps.predict  # noqa: F401  (imported unpatched: it keeps the real runner)
    import danet_keras.export
    import danet_keras.export.runners

    calls = []

    class Runner:
        def __init__(self, path):
            self.model = path

    monkeypatch.setattr(danet_keras.export.runners, "KerasRunner", Runner)
    monkeypatch.setattr(
        danet_keras.export,
        "export_saved_model",
        lambda model, out, **kwargs: calls.append(kwargs),
    )
    out = str(tmp_path / "sm")
    arguments = ["export", "--model", "m.keras", "--format", "saved_model", "--output", out]
    assert main(arguments + ["--num-parity-images", "0"] + flag) == 0
    assert calls == [
        dict(
            image_size=None,
            optimize=True,
            dtype_policy=None,
            overwrite=False,
            outputs=("class_ids", "probabilities", "logits"),
            sliced_convs="auto",
            **expected,
        )
    ]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--format", "tflite", "--max-image-size", "128x128"], "--format saved_model only"),
        (["--format", "saved_model", "--max-image-size", "0x128"], "a size must be positive"),
        (["--format", "saved_model", "--max-image-size", "128 128"], "a size is N or HEIGHTxWIDTH"),
    ],
)
def test_cli_refuses_bad_max_image_size(tmp_path, capsys, arguments, message):
    code = main(["export", "--model", "m.keras", "--output", str(tmp_path / "x")] + arguments)
    assert code == 2
    assert message in capsys.readouterr().err


# --- Oversize requests -----------------------------------------------------------------------


def test_zero_png_builder_writes_valid_pngs():
    image = tf.io.decode_png(zero_png(30, 50))
    assert image.shape == (30, 50, 3) and not np.any(image.numpy())


@pytest.mark.slow
def test_12000_pixel_png_refused_before_decoding(default_export_dir, small_image, tmp_path):
    huge = zero_png(12000, 12000)
    # A few hundred KB that would decode to 432 MB of pixels (and ~12 GB in the model).
    assert len(huge) < 1_000_000
    (tmp_path / "huge.png").write_bytes(huge)
    (tmp_path / "small.png").write_bytes(encode(small_image, "PNG"))
    results = run_script(
        OVERSIZE_SCRIPT,
        [default_export_dir, tmp_path / "huge.png", tmp_path / "small.png", 1],
        tmp_path,
        300,
    )
    print("12000x12000 PNG refusals (first, second):", results)
    assert results["served_after"] == [1, *small_image.shape[:2]]
    for result in results["refusals"]:
        assert result["message"] is not None, "the 12000 x 12000 PNG was served"
        assert f"image of 12000x12000 pixels (height x width) {LIMIT_MESSAGE}" in result["message"]
        # The acceptance bounds. Refusing reads 32 bytes of header and
        # takes ~10 ms with ~0-2 MB of extra peak memory, while decoding would
        # allocate 432 MB for the pixels alone: the bounds are one to two orders
        # of magnitude above the measurement, for a loaded 2-CPU CI machine, and
        # as far below what a decode would cost.
        assert result["seconds"] < 1.0, result
        assert result["growth_mb"] < 200, result


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda image: png_claiming(encode(image, "PNG"), 12000, 12000), "12000x12000 pixels"),
        (lambda image: jpeg_claiming(encode(image, "JPEG"), 12000, 9000), "12000x9000 pixels"),
        (lambda image: jpeg_claiming(encode(image, "JPEG"), 16, 4097), "16x4097 pixels"),
        (
            lambda image: jpeg_claiming(encode(image, "JPEG", progressive=True), 5000, 48),
            "5000x48 pixels",
        ),
        # TensorFlow's GIF canvas is the largest frame, whatever the screen says.
        (lambda image: gif_with_frames((8, 8), (5000, 5000)), "5000x5000 pixels"),
        # ... also after 30,000 1-byte sub-blocks: a walk over 15 windows.
        (
            lambda image: gif_with_frames((8, 8), (16, 4100), comment_blocks=30000),
            "16x4100 pixels",
        ),
        # Frames within the limit, but together more than one RGB image at the maximum.
        (
            lambda image: gif_with_frames(*[(4096, 4096)] * 4),
            "GIF frames of 67108864 pixels in all exceed the maximum 50331648",
        ),
        (lambda image: bmp_claiming(encode(image, "BMP"), -12000, 48), "12000x48 pixels"),
        (lambda image: webp_claiming(12000, 12000), "12000x12000 pixels"),
    ],
    ids=[
        "png",
        "jpeg",
        "jpeg_wide",
        "jpeg_progressive",
        "gif_frame",
        "gif_frame_after_blocks",
        "gif_frames",
        "bmp",
        "webp",
    ],
)
def test_oversize_headers_refused(default_export, small_image, build, message):
    serve = default_export.signatures["serve_image_bytes"]
    # The second image is refused: the message names it.
    batch = [encode(small_image, "PNG"), build(small_image)]
    with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes\\[1\\]: ") as error:
        serve(image_bytes=tf.constant(batch))
    assert message in error.value.message
    if message.endswith("pixels"):
        assert LIMIT_MESSAGE in error.value.message


@pytest.mark.slow
def test_gif_walk_matches_a_reference_walk():
    from danet_keras.export.image_headers import GIF_WINDOW, encoded_image_size

    maximum = (100, 100)
    size_of = tf.function(
        lambda data: encoded_image_size(data, maximum),
        input_signature=[tf.TensorSpec([], tf.string)],
    )
    rng = random.Random(5)
    frames = [synthetic_images(1, (20 + 3 * i, 30 + 2 * i), seed=i)[0] for i in range(3)]
    animation = io.BytesIO()
    first, *others = [Image.fromarray(frame) for frame in frames]
    first.save(animation, format="GIF", save_all=True, append_images=others, duration=40)
    noise = encode(synthetic_images(1, (90, 120), seed=7)[0], "GIF")  # 3 windows
    sources = [animation.getvalue(), noise, gif_with_frames((9, 9), (40, 50), comment_blocks=3000)]
    cases = list(sources)
    for _ in range(150):
        data = bytearray(rng.choice(sources))
        kind = rng.randrange(3)
        if kind == 0:  # bit flips after the signature
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(6, len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[rng.randrange(6, len(data)) :]
        else:  # blocks of junk, often straddling a window's end
            start = rng.choice([rng.randrange(13, len(data)), GIF_WINDOW - rng.randrange(20)])
            data[start : start + 40] = bytes(
                rng.choice([0, 1, 0x21, 0x2C, 0xFF]) for _ in range(40)
            )
        cases.append(bytes(data))
    for data in cases:
        height, width, pixels = reference_gif_walk(data)
        size, message = size_of(tf.constant(data))
        assert tuple(size.numpy()) == (height, width)
        assert (message.numpy() != b"") == (pixels > 3 * maximum[0] * maximum[1])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "image_bytes is empty"),
        (b"not an image", "Unknown image file format"),
        (zero_png(8, 8)[:20], "PNG header truncated or without IHDR chunk"),
        (b"\x89PNG\r\n\x1a\n" + png_chunk(b"tEXt", b"a" * 16), "without IHDR chunk"),
        (b"BM" + bytes(20), "BMP header truncated"),
        (b"RIFF\x20\x00\x00\x00WEBPVP9 " + bytes(20), "WebP header not understood"),
        (webp_claiming(16, 16)[:26], "WebP header truncated"),
        (b"\xff\xd8\xff\xe0" + bytes(40), "Invalid JPEG data"),
    ],
    ids=[
        "empty",
        "unknown",
        "png_short",
        "png_no_ihdr",
        "bmp_short",
        "webp_vp9",
        "webp_short",
        "jpeg",
    ],
)
def test_unreadable_headers_refused(default_export, data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        default_export.signatures["serve_image_bytes"](image_bytes=tf.constant([data]))


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 4097, 8, 3), f"image of 4097x8 pixels (height x width) {LIMIT_MESSAGE}"),
        ((1, 8, 4097, 3), f"image of 8x4097 pixels (height x width) {LIMIT_MESSAGE}"),
        ((MAX_BATCH_SIZE + 1, 8, 8, 3), "batch of 17 images exceeds the maximum 16 of this model"),
        ((1, 1024, 2049, 3), f"request of 2098176 {BUDGET_MESSAGE}"),
        ((3, 1024, 683, 3), f"request of 2098176 {BUDGET_MESSAGE}"),
    ],
)
def test_oversize_tensor_refused(default_export, shape, message):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        default_export.signatures["serving_default"](images=tf.zeros(shape, tf.uint8))
    assert message in error.value.message


def test_oversize_batch_of_bytes_refused(default_export, small_image):
    batch = tf.constant([encode(small_image, "PNG")] * (MAX_BATCH_SIZE + 1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch of 17 images exceeds"):
        default_export.signatures["serve_image_bytes"](image_bytes=batch)


# --- The per-request pixel budget -------------------------------------------------------------


def test_default_limits():
    assert DEFAULT_MAX_BATCH_SIZE == 16
    assert DEFAULT_MAX_REQUEST_PIXELS == 1024 * 2048


def test_48_black_4096_pixel_pngs_refused_by_a_default_export(
    default_export_dir, small_image, tmp_path
):
    # The request: 48 all-black 4096 x 4096 PNGs, 2.4 MB in all, would
    # be 48 x 4096 x 4096 x 3 bytes of pixels, a tensor of more than 2**31
    # elements (before the limits, TensorFlow aborted the process).
    black = zero_png(4096, 4096)
    assert 48 * len(black) < 3_000_000
    (tmp_path / "black.png").write_bytes(black)
    (tmp_path / "small.png").write_bytes(encode(small_image, "PNG"))
    results = run_script(
        OVERSIZE_SCRIPT,
        [default_export_dir, tmp_path / "black.png", tmp_path / "small.png", 48],
        tmp_path,
        300,
    )
    print("48 black 4096x4096 PNGs, refusals (first, second):", results)
    for result in results["refusals"]:
        assert result["message"] is not None, "the request was served"
        assert "batch of 48 images exceeds the maximum 16 of this model" in result["message"]
        # The refusal itself (not the process start), as the 12000 x 12000 PNG's.
        assert result["seconds"] < 1.0, result
        assert result["growth_mb"] < 200, result
    # The process lives on and serves the next request.
    assert results["served_after"] == [1, *small_image.shape[:2]]


@pytest.mark.parametrize(
    "sizes, message",
    [
        # Two 4096 x 4096 images: within the batch and image size limits, 16x the budget.
        ([(4096, 4096)] * 2, f"request of 33554432 {BUDGET_MESSAGE}"),
        ([(1024, 1025)] * 2, f"request of 2099200 {BUDGET_MESSAGE}"),
        ([(512, 256)] * 16 + [(2048, 2048)], "batch of 17 images exceeds the maximum 16"),
    ],
    ids=["two_4096", "two_1024x1025", "seventeen"],
)
def test_image_bytes_over_the_budget_refused_from_the_headers(
    default_export, small_image, sizes, message
):
    # Headers only: PNGs that claim the sizes but hold a 32 x 48 image, which
    # the decoder would refuse (wrong IHDR CRC): the budget is checked first.
    batch = [png_claiming(encode(small_image, "PNG"), *size) for size in sizes]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        default_export.signatures["serve_image_bytes"](image_bytes=tf.constant(batch))
    assert message in error.value.message


def test_image_bytes_at_the_budget_pass_the_check(default_export, small_image):
    # 1024 x 2048 in all passes the budget: the request reaches the decoder,
    # which refuses these header-only PNGs (their CRC), not the budget.
    batch = [png_claiming(encode(small_image, "PNG"), 1024, 1024)] * 2
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        default_export.signatures["serve_image_bytes"](image_bytes=tf.constant(batch))
    assert "exceeds the maximum" not in error.value.message


@pytest.mark.parametrize(
    "limits, message",
    [
        # A million-pixel budget with 16384-pixel sides: over 2**31 elements in one tensor.
        (dict(max_image_size=(16384, 16384), max_batch_size=16, max_request_pixels=2**28), ""),
        # No batch limit: a request of two million 1 x 1 images.
        (
            dict(
                max_image_size=DEFAULT_MAX_IMAGE_SIZE,
                max_batch_size=None,
                max_request_pixels=DEFAULT_MAX_REQUEST_PIXELS,
            ),
            "up to 2097152 images",
        ),
    ],
    ids=["budget", "no_batch_limit"],
)
def test_export_refuses_limits_that_allow_2_31_elements(small_danet, limits, message):
    with pytest.raises(ValueError, match="more than TensorFlow's 2147483647") as error:
        build_export_archive(small_danet, **limits)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# Requests within the default limits that the graph pads most: thin images
# (each rounded up to whole cells of 128 pixels at 1/8 resolution), 1-pixel
# images, odd sizes, full batches.
BOUND_PROBES = [
    (1, 1, 1),
    (16, 1, 1),
    (1, 1, 4096),
    (1, 4096, 1),
    (16, 33, 3971),
    (16, 362, 362),
    (3, 130, 61),
    (2, 1023, 1024),
    (7, 97, 513),
    (1, 1024, 2048),
]


def assert_request_bound_rule(elements, rate, margin, largest):
    """The rule of `request_tensor_bound` holds for the BOUND_PROBES' traced largest tensors."""
    print("bound at the default limits:", elements)
    assert elements <= MAX_TENSOR_ELEMENTS
    for (batch, height, width), found in zip(BOUND_PROBES, largest):
        assert batch * height * width <= DEFAULT_MAX_REQUEST_PIXELS
        rule = rate * batch * (height + margin) * (width + margin)
        print(f"  {batch}x{height}x{width}: largest tensor {found}, rule {rule:.0f}")
        assert found <= rule <= elements, (batch, height, width)


def check_request_bound(model):
    """The rule of `request_tensor_bound` holds on the traced graph of the BOUND_PROBES."""
    bound = request_tensor_bound(
        model,
        max_image_size=DEFAULT_MAX_IMAGE_SIZE,
        max_batch_size=DEFAULT_MAX_BATCH_SIZE,
        max_request_pixels=DEFAULT_MAX_REQUEST_PIXELS,
    )
    largest = [largest_request_tensor(model, probe) for probe in BOUND_PROBES]
    assert_request_bound_rule(bound.elements, bound.rate, bound.margin, largest)
    return bound


# ResNet-50's export and the tracing of its probes hold gigabytes of graphs: they run in a
# process of their own, so that the test process does not keep them.
RESNET50_EXPORT_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import danet_keras
    from danet_keras.export import export_saved_model
    from danet_keras.export.saved_model import (
        DEFAULT_MAX_BATCH_SIZE,
        DEFAULT_MAX_IMAGE_SIZE,
        DEFAULT_MAX_REQUEST_PIXELS,
        largest_request_tensor,
        request_tensor_bound,
    )
    from danet_keras.inference.optimize import inference_model

    path, probes = sys.argv[1], json.loads(sys.argv[2])
    model = danet_keras.DANet(num_classes=19, backbone="resnet50", backbone_weights=None)
    export_saved_model(model, path)
    graph_model = inference_model(model)
    bound = request_tensor_bound(
        graph_model,
        max_image_size=DEFAULT_MAX_IMAGE_SIZE,
        max_batch_size=DEFAULT_MAX_BATCH_SIZE,
        max_request_pixels=DEFAULT_MAX_REQUEST_PIXELS,
    )
    largest = [largest_request_tensor(graph_model, tuple(probe)) for probe in probes]
    print(json.dumps({"elements": bound.elements, "rate": bound.rate, "margin": bound.margin,
                      "largest": largest}))
    """
)


def test_request_bound_holds_on_the_exported_graph(small_danet):
    check_request_bound(inference_model(small_danet))


# Peak RSS of a fresh process that loads a default DANet-ResNet50 SavedModel
# and serves one request at the pixel budget (docs/reliability.md): measured
# 1,727 MB on a 2-core "AMD EPYC" (lscpu) with avx512f (4,814 MB with the
# Winograd graph, the default before issue 23); the bound leaves 39% for other
# CPUs' kernels and allocators.
RESNET50_SERVING_PEAK_MB = 2400


@pytest.mark.slow
def test_resnet50_serves_a_request_at_the_budget_within_the_stated_memory(tmp_path):
    path = str(tmp_path / "danet_r50")
    bound = run_script(RESNET50_EXPORT_SCRIPT, [path, json.dumps(BOUND_PROBES)], tmp_path, 900)
    # One Cityscapes frame: the whole budget in one image (the limit is inclusive).
    result = run_script(SERVE_SCRIPT, [path, 1, 1024, 2048], tmp_path, 600)
    print("DANet-ResNet50, one 1024x2048 request in a fresh process:", result)
    # The figures docs/reliability.md quotes (run with -s to see them).
    largest = dict(zip(map(tuple, BOUND_PROBES), bound["largest"]))
    print(
        f"request bound at the default limits: {bound['elements']:,} elements, "
        f"{bound['rate']} per pixel, margin {bound['margin']}; "
        f"16 images of 33x3971: {largest[(16, 33, 3971)]:,}"
    )
    assert result["shape"] == [1, 1024, 2048]
    assert result["peak_rss_mb"] <= RESNET50_SERVING_PEAK_MB, result
    # The rule that keeps every tensor under 2**31 elements, on ResNet-50's graph.
    assert_request_bound_rule(bound["elements"], bound["rate"], bound["margin"], bound["largest"])


# --- JPEG scans ------------------------------------------------------------------------------


def test_jpeg_scan_count_counts_sos_markers():
    image = synthetic_images(1, (40, 56), seed=4)[0]
    count = tf.function(jpeg_scan_count, input_signature=[tf.TensorSpec([], tf.string)])
    for data, expected in [
        (encode(image, "JPEG"), 1),
        (encode(image, "JPEG", progressive=True), 10),  # libjpeg's script for colour
        (encode(image[..., 0], "JPEG", progressive=True), 6),  # ... for grey
        (jpeg_with_extra_scans(40, 56, 7), 17),
        (b"\xff\xda", 1),
        (b"\xff", 0),
        (b"", 0),
    ]:
        assert data.count(b"\xff\xda") == expected
        assert int(count(tf.constant(data))) == expected


def test_many_scan_jpeg_refused_before_decoding(default_export, small_image):
    # 1024 x 1024 (half the budget), 3000 scans added in 40 KB: TensorFlow's
    # decoder accepts the file and passes over the image once per scan
    # (timed below for the log: ~0.16 ms a scan here, 10,000 scans 1.6 s; the
    # test asserts no time).
    plain, crafted = jpeg_with_extra_scans(1024, 1024, 0), jpeg_with_extra_scans(1024, 1024, 3000)
    assert len(crafted) < 50_000
    seconds = []
    for data in (plain, crafted):
        start = time.perf_counter()
        decoded = tf.io.decode_image(data, channels=3)
        seconds.append(time.perf_counter() - start)
        assert decoded.shape == (1024, 1024, 3) and int(tf.reduce_max(decoded)) == 0
    print(f"decoding 10 scans: {seconds[0]:.3f} s, 3010 scans: {seconds[1]:.3f} s")
    serve = default_export.signatures["serve_image_bytes"]
    batch = tf.constant([encode(small_image, "PNG"), crafted])
    with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes\\[1\\]: ") as error:
        serve(image_bytes=batch)
    assert (
        f"JPEG of 3010 scans exceeds the maximum {MAX_JPEG_SCANS} scans of this model"
        in error.value.message
    )


def test_jpeg_of_the_maximum_scans_is_served(default_export):
    height, width = 64, 96
    at_limit = jpeg_with_extra_scans(height, width, MAX_JPEG_SCANS - 10)
    out = default_export.signatures["serve_image_bytes"](image_bytes=tf.constant([at_limit]))
    assert out["class_ids"].shape == (1, height, width)
    over = jpeg_with_extra_scans(height, width, MAX_JPEG_SCANS - 9)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"JPEG of {MAX_JPEG_SCANS + 1} scans"):
        default_export.signatures["serve_image_bytes"](image_bytes=tf.constant([over]))


@pytest.mark.slow
def test_image_at_the_limit_is_served(default_export):
    # The limit is inclusive: 4096 rows pass (a narrow image keeps the run short).
    out = default_export.signatures["serving_default"](images=tf.zeros((1, 4096, 16, 3), tf.uint8))
    assert out["class_ids"].shape == (1, 4096, 16)


@pytest.mark.parametrize(
    "image_format, options",
    [
        ("PNG", {}),
        ("JPEG", {"quality": 95}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {"quality": 90}),
        ("WEBP", {"lossless": True}),
    ],
    ids=["png", "jpeg", "jpeg_progressive", "gif", "bmp", "webp", "webp_lossless"],
)
def test_every_format_is_served_within_the_limit(
    default_export, test_images, image_format, options
):
    images = test_images[0]
    batch = tf.constant([encode(image, image_format, **options) for image in images])
    out = default_export.signatures["serve_image_bytes"](image_bytes=batch)
    assert out["class_ids"].shape == images.shape[:3]
    assert out["probabilities"].shape == images.shape[:3] + (NUM_CLASSES,)
    if image_format in ("PNG", "BMP") or options.get("lossless"):
        # Lossless: the same pixels as the tensor signature's input.
        reference = default_export.signatures["serving_default"](images=tf.constant(images))
        assert_outputs_match(
            {k: v.numpy() for k, v in out.items()}, {k: v.numpy() for k, v in reference.items()}
        )


# --- Concurrency -----------------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_burst_matches_sequential_answers(default_export_dir, test_images, tmp_path):
    # One image at each of the fixture's two sizes (64 x 96 and 48 x 80), each
    # sent as a tensor and as PNG bytes: 4 kinds of request, 50 of each.
    np.savez(tmp_path / "inputs.npz", a=test_images[0][:1], b=test_images[1])
    summary = run_script(
        BURST_SCRIPT,
        [default_export_dir, tmp_path / "inputs.npz", tmp_path / "out.npz", 200, 16],
        tmp_path,
        300,
    )
    print("burst of 200 requests from 16 threads:", summary)
    assert summary["requests"] == 200
    # Answers that are not bit-identical to the sequential one (other thread
    # partitions may round differently) must agree to kernel rounding.
    results = np.load(tmp_path / "out.npz")

    def outputs(prefix):
        return {
            k.rsplit("/", 1)[1]: results[k] for k in results.files if k.startswith(prefix + "/")
        }

    differing = {k.rsplit("/", 1)[0] for k in results.files if k.startswith("burst/")}
    assert len(differing) == 200 - summary["identical"]
    for prefix in differing:
        index = prefix.split("/")[2]
        assert_outputs_match(outputs(prefix), outputs(f"sequential/{index}"))
    # Peak memory over the burst. At most 16 requests are in flight, each with
    # a few MB of activations at 64 x 96 (the largest, ResNet's 64-channel
    # 32 x 48 stem output, is 0.4 MB), plus a malloc arena and TensorFlow's
    # per-thread caches for each new worker thread: measured 14 MB on 2
    # busy CPUs. 200 MB, the budget for one oversize request, is the bound
    # for all 200: memory that grew with the number of requests, or a copy of
    # the model per thread (~50 MB of weights each), would exceed it.
    assert summary["growth_mb"] < 200, summary


# --- Fuzzing ---------------------------------------------------------------------------------

FUZZ_SEED = 20240611
FUZZ_KINDS = ("bitflip", "truncate", "junk_after_signature", "overwrite_middle", "huge_header")
SIGNATURE_LENGTH = {"png": 8, "jpeg": 3, "gif": 6, "bmp": 2, "webp": 12}


def claim_huge(image_format, data, rng):
    """`data` with a header that claims at least one side above 4096."""
    big = rng.choice([4097, 5000, 12000, 65535])
    other = rng.choice([1, 32, 4096, big])
    height, width = (big, other) if rng.random() < 0.5 else (other, big)
    if image_format == "png":
        return png_claiming(data, height, rng.choice([width, 2**31 - 1]))
    if image_format == "jpeg":
        return jpeg_claiming(data, height, width)
    if image_format == "gif":
        frames = [(8, 8)] * rng.randint(0, 3) + [(height, width)]
        return gif_with_frames(*frames)
    if image_format == "bmp":
        return bmp_claiming(data, rng.choice([height, -height, -(2**31)]), width)
    return webp_claiming(height, width)


def damage(kind, image_format, data, rng):
    signature = SIGNATURE_LENGTH[image_format]
    if kind == "bitflip":
        data = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == "truncate":
        return data[: rng.randrange(len(data))]
    if kind == "junk_after_signature":
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return data[:signature] + junk + data[signature:]
    if kind == "overwrite_middle":
        start = rng.randrange(signature, len(data))
        size = rng.randint(1, max(1, len(data) // 4))
        return with_bytes(data, start, bytes(rng.randrange(256) for _ in range(size)))[: len(data)]
    return claim_huge(image_format, data, rng)


def fuzz_inputs(image):
    """The damaged inputs, from a fixed seed: (kind, format, bytes)."""
    rng = random.Random(FUZZ_SEED)
    valid = {
        "png": encode(image, "PNG"),
        "jpeg": encode(image, "JPEG", quality=90),
        "gif": encode(image, "GIF"),
        "bmp": encode(image, "BMP"),
        "webp": encode(image, "WEBP", quality=90),
    }
    # PNG and JPEG, what clients send, get the most; the other decoders each
    # get a share (the GIF walker most of those).
    per_kind = {"png": 18, "jpeg": 18, "gif": 12, "bmp": 6, "webp": 6}
    inputs = [("empty", "none", b"")]
    for image_format, data in valid.items():
        for kind in FUZZ_KINDS:
            for _ in range(per_kind[image_format]):
                inputs.append((kind, image_format, damage(kind, image_format, data, rng)))
    for _ in range(20):
        size = rng.choice([1, 2, 3, 8, 16, 64, 500])
        inputs.append(("random_bytes", "none", bytes(rng.randrange(256) for _ in range(size))))
    for signature in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"RIFF"):
        size = rng.choice([0, 1, 10, 30, 200])
        junk = bytes(rng.randrange(256) for _ in range(size))
        inputs.append(("random_bytes", "signature", signature + junk))
    return inputs


@pytest.mark.slow
def test_fuzzed_image_bytes_are_answered_or_refused(default_export_dir, small_image, tmp_path):
    inputs = fuzz_inputs(small_image)
    assert len(inputs) >= 300
    (tmp_path / "inputs.json").write_text(
        json.dumps(
            [
                {"kind": kind, "format": fmt, "data": base64.b64encode(data).decode()}
                for kind, fmt, data in inputs
            ]
        )
    )
    progress = tmp_path / "progress.txt"
    height, width = DEFAULT_MAX_IMAGE_SIZE
    arguments = [default_export_dir, tmp_path / "inputs.json", progress, NUM_CLASSES, height, width]
    try:
        # A crash or a hang fails the test (naming the input), not pytest.
        result = run_script(FUZZ_SCRIPT, arguments, tmp_path, timeout=300)
    except (AssertionError, subprocess.TimeoutExpired) as error:
        last = progress.read_text() if progress.exists() else "none"
        pytest.fail(f"the fuzz process failed on input {last}: {error}")
    counts, other = result["counts"], result["other"]
    print("fuzz counts (kind/format: answered, refused):")
    for key in sorted(counts):
        print(f"  {key}: {counts[key]['answered']}, {counts[key]['refused']}")
    print("refusals by message:", result["messages"])
    total = sum(c["answered"] + c["refused"] for c in counts.values())
    assert total + len(other) == len(inputs) >= 300
    assert other == []
    # A header that claims more than the maximum is never decoded.
    for key, count in counts.items():
        if key.startswith("huge_header/"):
            assert count["answered"] == 0, key
    assert counts["empty/none"] == {"answered": 0, "refused": 1}
