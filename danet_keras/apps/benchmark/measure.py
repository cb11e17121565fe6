"""Measuring primitives: peak memory, timing, forward latency, FLOPs and benchmark images.

Timing: the median of `repeats` calls after `warmup` calls (the first traces
the graph); on a shared machine compare only figures of one run.

TensorFlow and Keras are imported inside the functions that use them: a
benchmark case's child process loads only its own side's framework, so that
its peak RSS is its own (PyTorch processes import this module too).
"""

import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_of_script(code, timeout_s=None):
    """Runs Python `code` in a fresh process and returns that process's peak RSS in MiB.

    The peak is VmHWM of /proc/self/status, read at the end of `code`: unlike
    `ru_maxrss`, which Linux carries over from the parent through fork and
    exec, it counts the new process alone, however large its parent is.

    Args:
        code: Python source; it runs as `python -c`.
        timeout_s: None or seconds before the process is killed.

    Returns:
        The peak in MiB.

    Raises:
        RuntimeError: the process failed; the message ends with its last
            line of error output.
    """
    probe = (
        "\nprint('VMHWM', next(int(line.split()[1]) for line in open('/proc/self/status') "
        "if line.startswith('VmHWM:')))\n"
    )
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code + probe],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout_s,
    )
    peaks = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("VMHWM ")]
    if result.returncode != 0 or not peaks:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the measured process failed: {last}")
    return int(peaks[-1]) / 1024


# One image through a model, in a fresh process: `{model}` a `.keras` file (called in
# inference mode in a tf.function, all outputs; or `predict_class_map`) or a SavedModel
# directory (its `serving_default`, in a process that imports TensorFlow alone, as TF
# Serving runs it).
ONE_IMAGE_SCRIPTS = {
    "keras_call": """
import numpy as np, keras, tensorflow as tf
import danet_keras
model = keras.saving.load_model({model!r})
forward = tf.function(lambda x: model(x, training=False))
images = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, {h}, {w}, 3)), tf.float32)
{{k: v.numpy() for k, v in forward(images).items()}}
""",
    "predict_class_map": """
import numpy as np, keras
import danet_keras
model = keras.saving.load_model({model!r})
images = np.random.default_rng(0).uniform(0, 255, (1, {h}, {w}, 3)).astype("uint8")
model.predict_class_map(images)
""",
    "served": """
import numpy as np, tensorflow as tf
serve = tf.saved_model.load({model!r}).signatures["serving_default"]
images = np.random.default_rng(0).uniform(0, 255, (1, {h}, {w}, 3)).astype("uint8")
{{k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}}
""",
}


def one_image_peak_rss_mb(kind, model, size, timeout_s=None):
    """Peak RSS (MiB) of a fresh process that runs `model` on one image of `size`.

    Args:
        kind: a key of `ONE_IMAGE_SCRIPTS`.
        model: the `.keras` file or SavedModel directory.
        size: (height, width).
        timeout_s: None or seconds before the process is killed.

    Raises:
        RuntimeError: the process failed (see `peak_rss_of_script`).
    """
    height, width = size
    script = ONE_IMAGE_SCRIPTS[kind].format(model=str(model), h=height, w=width)
    return peak_rss_of_script(script, timeout_s)


def timed(function, warmup, repeats):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def alternating(calls, repeats):
    """{name: seconds of each call}, the calls taking turns (fair under drifting load)."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def forward_latency(model, image_size, batch_size=1, repeats=3, jit_compile=False, seed=0):
    """Times `model` on random [0, 255] images, in this process.

    Latency is the minimum over repeats of a compiled (`tf.function`)
    forward pass in inference mode, after one warm-up call that traces the
    graph; the minimum is the figure least disturbed by other work.

    Args:
        model: a Keras model taking (B, H, W, 3) images.
        image_size: (height, width).
        batch_size: images per call.
        repeats: timed calls after the warm-up.
        jit_compile: compile the forward pass with XLA.
        seed: seed of the random images.

    Returns:
        A dict: `min_s`, `median_s` (seconds per call), `images_per_s`
        (from the minimum) and `peak_rss_mb` of the process.
    """
    # deferred: one framework per process (module docstring)
    import tensorflow as tf

    if repeats < 1:
        raise ValueError(f"`repeats` must be >= 1, got {repeats}.")
    height, width = image_size
    images = np.random.default_rng(seed).uniform(0, 255, (batch_size, height, width, 3))
    images = tf.constant(images.astype("float32"))
    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    timing = timed(lambda: tf.nest.map_structure(lambda t: t.numpy(), forward(images)), 1, repeats)
    return {
        "min_s": timing["min_s"],
        "median_s": timing["median_s"],
        "images_per_s": batch_size / timing["min_s"],
        "peak_rss_mb": peak_rss_mb(),
    }


def model_flops(model, image_size, batch_size=1):
    """Multiply-adds x 2 of a DANet's forward pass at `image_size`, counted layer by layer.

    Counts the convolutions (as direct convolutions: a Winograd layer counts
    as the 3x3 convolution it computes) and both attentions' products; the
    element-wise ops, pooling and resizing (< 1%) are left out.

    Args:
        model: a functional Keras model (nested functional models included).
        image_size: (height, width).
        batch_size: images.

    Returns:
        The FLOP count (float).
    """
    # deferred: one framework per process (module docstring)
    import keras

    from danet_keras.inference.keras_internals import run_graph
    from danet_keras.layers import ChannelAttention, PositionAttention, WinogradConv2D

    total = [0.0]

    def visit(node, args, kwargs):
        layer = node.operation
        outputs = layer.compute_output_spec(*args, **kwargs)
        x = args[0]
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            total[0] += (
                2.0 * np.prod(outputs.shape[:3]) * kh * kw * x.shape[-1] // layer.groups
            ) * layer.filters
        elif isinstance(layer, WinogradConv2D):
            total[0] += 2.0 * np.prod(outputs.shape[:3]) * 9 * x.shape[-1] * layer.filters
        elif isinstance(layer, (PositionAttention, ChannelAttention)):
            b, h, w, c = x.shape
            n = h * w
            if isinstance(layer, PositionAttention):
                key_channels = max(1, c // layer.reduction)
                total[0] += 2.0 * b * n * c * (2 * key_channels + c)  # projections
                total[0] += 2.0 * b * n * n * (key_channels + c)  # energy, weighted sum
            else:
                total[0] += 2.0 * 2 * b * n * c * c
        return outputs

    height, width = image_size
    run_graph(model, [keras.KerasTensor((batch_size, height, width, 3))], visit)
    return total[0]


def matmul_peak_gflops(dtype="float32", size=2048, repeats=8):
    """The best GFLOP/s of a (size x size) matmul in TensorFlow, in this process."""
    # deferred: one framework per process (module docstring)
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.cast(tf.constant(rng.normal(size=(size, size)), tf.float32), dtype)
    b = tf.cast(tf.constant(rng.normal(size=(size, size)), tf.float32), dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    timing = timed(lambda: product().numpy(), 2, repeats)
    return 2.0 * size**3 / timing["min_s"] / 1e9


def benchmark_images(batch, size, seed=5):
    """Smooth uint8 RGB images (batch, H, W, 3), made with NumPy alone.

    Noise at 1/8 resolution, upsampled bilinearly: regions and edges like a
    photo's. The PyTorch processes make theirs without importing TensorFlow.
    """
    height, width = size
    coarse = np.random.default_rng(seed).uniform(
        0, 255, (batch, max(2, height // 8), max(2, width // 8), 3)
    )

    def upsample(x, axis, length):
        grid = np.linspace(0, x.shape[axis] - 1, length)
        low = np.floor(grid).astype(int)
        high = np.minimum(low + 1, x.shape[axis] - 1)
        shape = [1] * x.ndim
        shape[axis] = length
        weight = (grid - low).reshape(shape)
        return np.take(x, low, axis) * (1 - weight) + np.take(x, high, axis) * weight

    smooth = upsample(upsample(coarse, 1, height), 2, width)
    return np.clip(np.round(smooth), 0, 255).astype(np.uint8)
