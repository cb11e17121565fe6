"""Forward-pass latency of a DANet, the way `danet-keras benchmark` measures it.

Latency is the minimum over repeats of a compiled (`tf.function`) forward
pass in inference mode, after one warm-up call that traces the graph; the
minimum is the figure least disturbed by other work on a shared machine.
"""

import resource
import statistics
import time

import numpy as np
import tensorflow as tf


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward_latency(model, image_size, batch_size=1, repeats=3, jit_compile=False, seed=0):
    """Times `model` on random [0, 255] images.

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
    if repeats < 1:
        raise ValueError(f"`repeats` must be >= 1, got {repeats}.")
    height, width = image_size
    images = np.random.default_rng(seed).uniform(0, 255, (batch_size, height, width, 3))
    images = tf.constant(images.astype("float32"))
    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    tf.nest.map_structure(lambda t: t.numpy(), forward(images))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), forward(images))
        times.append(time.perf_counter() - start)
    return {
        "min_s": min(times),
        "median_s": statistics.median(times),
        "images_per_s": batch_size / min(times),
        "peak_rss_mb": peak_rss_mb(),
    }
