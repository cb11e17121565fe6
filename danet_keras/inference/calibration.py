"""How large convolutions are cut on this machine: measured once, then cached.

A lever that wins on one CPU can lose on another. DANet's 3x3 2048 -> 512
head convolution at 64x64 (`layers.SlicedConv2D`):

| | AVX-512 | oneDNN capped at AVX2 |
|---|---|---|
| 8 slices of 64 filters | 0.66x-0.71x | 4x |
| 2 row bands (a batch of 2) | 0.84x | 0.61x |

So `optimize_for_inference(sliced_convs="auto")` does not guess: for each
large convolution shape it times the candidates (the whole convolution,
2/4/8 filter slices, 2 row bands) side by side on this machine, in this
process's kernels and threads, and keeps the fastest only when it beats the
whole convolution by a clear margin. The choice is written to a cache file
keyed by the machine (CPU, ISA, kernel library settings, threads, TensorFlow
version), so later calls, processes and exports on the same machine make the
same choice without timing anything. Processes on one machine measure one at
a time, under a lock of the cache folder (none times while another's timing
loads the cores), and one that waited takes what the other measured:

    ~/.cache/danet_keras/sliced_convs.json     (`utils.cache.cache_dir()`)

`danet-keras info` prints this machine's entries; `sliced_convs=None` (or a
dict of layer names) overrides them; deleting the file measures again.
"""

import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np

from danet_keras.utils.backends import keras_backend
from danet_keras.utils.cache import cache_dir
from danet_keras.utils.cpu import kernels_description
from danet_keras.utils.output_paths import OutputRefused, locked, write_artefact_bytes

CACHE_NAME = "sliced_convs.json"
CACHE_KIND = "sliced_convs_cache"
CACHE_FORMAT = "danet_keras sliced convolutions 1"
CANDIDATE_SLICES = (1, 2, 4, 8)
WHOLE = (1, 1)  # (filter slices, row bands)
# Slices narrower than this are not tried: too little work per kernel call.
MIN_SLICE_FILTERS = 32
# The feature map the candidates are timed on: DANet's 1/8 map of a 512x512 image.
CALIBRATION_SIZE = (64, 64)
# Only 3x3 (or larger) convolutions of at least this many multiply-adds per output
# pixel are timed (3x3 512 -> 512: 2.4M): smaller ones cost little in DANet.
MIN_MULTIPLY_ADDS_PER_PIXEL = 2_000_000
# A cut must take at most this fraction of the whole convolution's median time:
# differences under ~10% do not repeat between runs on a shared 2-core machine.
WIN_MARGIN = 0.90
ROUNDS = 5


def cache_path():
    """The cache file of the measured choices, in `utils.cache.cache_dir()`."""
    return os.path.join(cache_dir(), CACHE_NAME)


def machine_key():
    """What the timings depend on: CPU and ISA, kernel library settings, threads, TensorFlow."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    return f"{kernels_description()}; intra-op threads {threads}; TensorFlow {tf.__version__}"


def shape_key(in_channels, filters, kernel_size, strides, dilation_rate):
    """The cache's name for one convolution shape."""
    kh, kw = kernel_size
    return (
        f"{kh}x{kw} {in_channels}->{filters}, stride {tuple(strides)}, "
        f"dilation {tuple(dilation_rate)}"
    )


def candidates(filters, strides=(1, 1)):
    """The (slices, bands) cuts timed for a "same"-padded convolution, the whole one first."""
    cuts = [
        (s, 1) for s in CANDIDATE_SLICES if filters % s == 0 and filters // s >= MIN_SLICE_FILTERS
    ]
    if tuple(strides) == (1, 1):
        cuts.append((1, 2))
    return cuts


def calibrated(in_channels, filters, kernel_size, strides, dilation_rate):
    """Whether `sliced_convs="auto"` measures this convolution shape (else it stays whole)."""
    kh, kw = kernel_size
    return (
        kh * kw > 1
        and in_channels * filters * kh * kw >= MIN_MULTIPLY_ADDS_PER_PIXEL
        and len(candidates(filters, strides)) > 1
    )


def label(cut):
    """A cut's name in the cache and in `danet-keras info`."""
    slices, bands = cut
    if cut == WHOLE:
        return "whole"
    return f"{slices} slices" if bands == 1 else f"{bands} bands"


def _read_machines(path):
    """{machine key: {shape key: entry}} of the cache file; {} if none, unreadable or foreign."""
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict) or content.get("format") != CACHE_FORMAT:
        return {}
    machines = content.get("machines")
    if not isinstance(machines, dict):
        return {}
    return {key: value for key, value in machines.items() if isinstance(value, dict)}


def read_cache(path=None):
    """{shape key: entry} of this machine from the cache file, {} if none or unreadable."""
    return _read_machines(cache_path() if path is None else path).get(machine_key(), {})


def _cached_cut(entry, filters, strides):
    """The (slices, bands) of a cache entry, or None if it holds no valid cut for this shape."""
    if not isinstance(entry, dict):
        return None
    cut = (entry.get("slices"), entry.get("bands"))
    return cut if cut in candidates(filters, strides) else None


def _write_cache(key, entry, path, filters, strides):
    """Records `entry` for `key`; returns the cut that holds (another process's, if first).

    Processes that measured the same shape at once keep the first one's choice, so every
    process and export on the machine makes the same one.
    """
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Locked from reading to recording: processes calibrating at once (the workers of
        # one server, say) each add their shapes, and none finds another's fresh file
        # unrecorded and takes it for a file that danet-keras did not write.
        with locked(os.path.dirname(path)):
            machines = _read_machines(path)
            entries = machines.setdefault(machine_key(), {})
            first = _cached_cut(entries.get(key), filters, strides)
            if first is not None:
                return first
            entries[key] = entry
            content = {"format": CACHE_FORMAT, "machines": machines}
            data = (json.dumps(content, indent=2, sort_keys=True) + "\n").encode("utf-8")
            write_artefact_bytes(path, CACHE_KIND, data, overwrite=True)
    except (OSError, OutputRefused) as error:
        # The choice still holds for this process; only its memory across processes is lost.
        print(f"danet-keras: sliced_convs choice not cached ({error})", file=sys.stderr)
    return entry["slices"], entry["bands"]


def _traced_candidate(cut, kernel, bias, strides, dilation_rate, images):
    """A traced and warmed-up function running `images` through one cut of the convolution."""
    import tensorflow as tf

    from danet_keras.layers.sliced_conv import SlicedConv2D

    slices, bands = cut
    layer = SlicedConv2D(
        kernel.shape[-1],
        kernel.shape[:2],
        slices=slices,
        bands=bands,
        strides=strides,
        dilation_rate=dilation_rate,
        padding="same",
        activation="relu",
        # Timed in float32 whatever the global policy: "auto" cuts float32 convolutions only.
        dtype="float32",
    )
    layer.build(images.shape)
    layer.set_weights([kernel, bias])
    # A function of the layer itself: TensorFlow counts traces per Python function, and one
    # lambda traced per candidate made it warn about retracing on the user's console.
    forward = tf.function(layer)
    forward(images).numpy()  # traces and warms up
    return forward


def time_candidates(
    in_channels, filters, kernel_size, strides, dilation_rate, size=None, rounds=None, cuts=None
):
    """Median seconds of one call per candidate cut, timed alternately in this process.

    Args:
        in_channels, filters, kernel_size, strides, dilation_rate: the shape.
        size: (height, width) of the one image timed (None: `CALIBRATION_SIZE`).
        rounds: calls per candidate (None: `ROUNDS`).
        cuts: the (slices, bands) cuts to time (None: `candidates(filters, strides)`).

    Returns:
        {(slices, bands): median seconds}.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    height, width = CALIBRATION_SIZE if size is None else size
    images = tf.constant(rng.standard_normal((1, height, width, in_channels), np.float32))
    kernel = rng.standard_normal((*kernel_size, in_channels, filters), np.float32) * 0.01
    bias = rng.standard_normal(filters).astype(np.float32)
    calls = {
        cut: _traced_candidate(cut, kernel, bias, strides, dilation_rate, images)
        for cut in (candidates(filters, strides) if cuts is None else cuts)
    }
    times = {cut: [] for cut in calls}
    for _ in range(ROUNDS if rounds is None else rounds):
        for cut, forward in calls.items():
            start = time.perf_counter()
            forward(images).numpy()
            times[cut].append(time.perf_counter() - start)
    return {cut: statistics.median(values) for cut, values in times.items()}


def choose(times):
    """The fastest cut if it takes <= `WIN_MARGIN` of the whole convolution's time, else whole."""
    best = min(times, key=times.get)
    return best if times[best] <= WIN_MARGIN * times[WHOLE] else WHOLE


def convolution_cut(in_channels, filters, kernel_size, strides, dilation_rate, path=None):
    """How this machine runs a "same"-padded float32 convolution of this shape (see the module).

    Args:
        in_channels, filters: the convolution's input and output channels.
        kernel_size, strides, dilation_rate: (height, width) pairs.
        path: the cache file (None: `cache_path()`).

    Returns:
        (slices, bands) for `layers.SlicedConv2D`: (1, 1), whole, for shapes
        that are not measured, for other Keras backends (the timings are
        TensorFlow's), and where no cut wins.
    """
    if keras_backend() != "tensorflow" or not calibrated(
        in_channels, filters, kernel_size, strides, dilation_rate
    ):
        return WHOLE
    path = cache_path() if path is None else path
    key = shape_key(in_channels, filters, kernel_size, strides, dilation_rate)
    cut = _cached_cut(read_cache(path).get(key), filters, strides)
    if cut is not None:
        return cut
    with contextlib.ExitStack() as measuring:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Processes on one machine measure one at a time: none times while another's
            # timing loads the cores, and a shape is measured once.
            measuring.enter_context(locked(os.path.dirname(path)))
        except OSError:
            pass  # no cache folder: measured here, kept for this process (`_write_cache`)
        cut = _cached_cut(read_cache(path).get(key), filters, strides)
        if cut is not None:
            return cut  # measured by another process while this one waited
        times = time_candidates(in_channels, filters, kernel_size, strides, dilation_rate)
        slices, bands = choose(times)
        entry = {
            "slices": slices,
            "bands": bands,
            "median_ms": {label(cut): round(t * 1e3, 2) for cut, t in times.items()},
        }
        return _write_cache(key, entry, path, filters, strides)


def describe(path=None):
    """Lines for `danet-keras info`: this machine's measured choices."""
    path = cache_path() if path is None else path
    entries = read_cache(path)
    if not entries:
        return [f"sliced_convs='auto': nothing measured on this machine yet ({path})"]
    lines = [f"sliced_convs='auto', measured on this machine ({path}):"]
    for key in sorted(entries):
        entry = entries[key]
        cut = label((entry.get("slices"), entry.get("bands")))
        lines.append(f"  {key}: {cut}; median ms {entry.get('median_ms')}")
    return lines
