"""Latency, memory and throughput of DANet, on its own and against the PyTorch reference.

`forward_latency` times a model in this process (the quick local check of
`danet-keras benchmark`). For side-by-side figures each configuration runs
in its own process, so that its peak RSS is its own: a *case* (a dict, see
`run_case`) names one side (`"keras"`, `"tflite"` or `"torch"`: the project's
PyTorch reference DANet, `convert.torch_reference`, holding the same weights),
one precision and one task (inference, a training step, the SavedModel
serving path, ...), and `run_case_in_child` runs it in a child process under
a memory limit. `benchmarks/vs_pytorch.py` builds its tables from these, and
`danet-keras benchmark --compare-pytorch` runs `compare_inference`.

Timing: the median of `repeats` calls after `warmup` calls (the first traces
the graph); on a shared machine compare only figures of one run.

TensorFlow, Keras, PyTorch, LiteRT and the package's own model code are
imported inside the functions that use them: a case's child process loads
only its own side's framework, so that its peak RSS is its own.
"""

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

RESULT_PREFIX = "BENCHMARK_RESULT "
DEFAULT_MAX_RSS_GB = 16.0
# One block for the whole N x N energy: the official code's memory behaviour.
NAIVE_ATTENTION_BLOCK = 1 << 30
KERAS_VARIANTS = ("plain", "optimized", "naive", "winograd")
TRAINING_OUTPUTS = ("logits", "position_logits", "channel_logits")
LOGIT_STRIDE = 4  # saved logits keep every 4th pixel in each direction


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(function, warmup, repeats):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def _alternating(calls, repeats):
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
    timing = _timed(lambda: tf.nest.map_structure(lambda t: t.numpy(), forward(images)), 1, repeats)
    return {
        "min_s": timing["min_s"],
        "median_s": timing["median_s"],
        "images_per_s": batch_size / timing["min_s"],
        "peak_rss_mb": peak_rss_mb(),
    }


# === FLOPs ===
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
    timing = _timed(lambda: product().numpy(), 2, repeats)
    return 2.0 * size**3 / timing["min_s"] / 1e9


# === Cases (run in a child process each) ===
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


def _synthetic(batch, size, seed=5):
    return benchmark_images(batch, tuple(size), seed=seed)


def _model_config(case):
    config = {"num_classes": case["num_classes"], "backbone": case["backbone"]}
    for key in ("output_stride", "head_channels"):
        if case.get(key) is not None:
            config[key] = case[key]
    return config


def _save_logits(case, logits):
    """The first image's (H, W, K) logits, every LOGIT_STRIDE-th pixel, for agreement checks."""
    if case.get("logits_path"):
        np.save(case["logits_path"], np.float32(logits[0, ::LOGIT_STRIDE, ::LOGIT_STRIDE]))


def _keras_model(case, for_training=False):
    # deferred: one framework per process (module docstring)
    import keras

    from danet_keras.inference.optimize import optimize_for_inference
    from danet_keras.models.danet import DANet

    policy = "mixed_bfloat16" if case.get("precision") == "bfloat16" else None
    variant = case.get("variant", "plain")
    if policy and (variant == "plain" or for_training):
        # The plain bfloat16 path: the model built under the global policy.
        keras.mixed_precision.set_global_policy(policy)
    block = NAIVE_ATTENTION_BLOCK if variant == "naive" else None
    model = DANet(attention_block_size=block, **_model_config(case))
    if case.get("weights"):
        # deferred: only cases with PyTorch weights read them (an optional extra)
        from danet_keras.convert import load_torch_checkpoint

        load_torch_checkpoint(model, case["weights"], arch="official")
    if variant in ("optimized", "naive", "winograd") and not for_training:
        # "winograd": Winograd convolutions whatever the precision (opt-in in bfloat16).
        options = {"winograd": True} if variant == "winograd" else {}
        return optimize_for_inference(model, dtype_policy=policy, **options)
    return model


def _keras_inference(case):
    # deferred: one framework per process (module docstring)
    import tensorflow as tf

    model = _keras_model(case)
    images = tf.constant(np.float32(_synthetic(case["batch"], case["size"])))
    forward = tf.function(lambda x: model(x, training=False))
    outputs = {}

    def run():
        outputs.update({k: v.numpy() for k, v in forward(images).items()})

    result = _timed(run, case.get("warmup", 1), case.get("repeats", 3))
    result["peak_rss_mb"] = peak_rss_mb()
    _save_logits(case, outputs["logits"])
    if case.get("count_flops"):
        result["flops"] = model_flops(model, case["size"], case["batch"])
    return result


def _torch_reference(case):
    # deferred: one framework per process (module docstring)
    import torch

    from danet_keras.convert.checkpoint import read_state_dict
    from danet_keras.convert.torch_reference import DANetReference

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    reference = DANetReference("official", **_model_config(case))
    if case.get("weights"):
        state = {
            k: torch.from_numpy(np.asarray(v)) for k, v in read_state_dict(case["weights"]).items()
        }
        reference.load_state_dict(state, strict=True)
    return reference


def _autocast(case):
    # deferred: one framework per process (module docstring)
    import torch

    if case.get("precision") == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _torch_inference(case):
    # deferred: one framework per process (module docstring)
    import torch

    from danet_keras.convert.torch_reference import normalize_images

    reference = _torch_reference(case).eval()
    images = normalize_images(_synthetic(case["batch"], case["size"]))
    outputs = {}

    def run():
        with torch.inference_mode(), _autocast(case):
            outputs.update(reference(images))

    result = _timed(run, case.get("warmup", 1), case.get("repeats", 3))
    result["peak_rss_mb"] = peak_rss_mb()
    _save_logits(case, outputs["logits"].float().permute(0, 2, 3, 1).numpy())
    return result


def _labels(case):
    rng = np.random.default_rng(1)
    return rng.integers(0, case["num_classes"], (case["batch"], *case["size"])).astype(np.int64)


def keras_training_step(model, optimizer):
    """A compiled training step of a DANet: forward, the three cross-entropies, backward, update.

    Args:
        model: a `DANet` with both attentions (three outputs).
        optimizer: a Keras optimizer.

    Returns:
        `step(images, labels)` -> the summed loss (a `tf.function`).
    """
    # deferred: one framework per process (module docstring)
    import keras
    import tensorflow as tf

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            total = sum(loss(labels, outputs[name]) for name in TRAINING_OUTPUTS)
        variables = model.trainable_variables
        optimizer.apply(tape.gradient(total, variables), variables)
        return total

    return step


def _keras_training(case):
    # deferred: one framework per process (module docstring)
    import keras
    import tensorflow as tf

    model = _keras_model(case, for_training=True)
    step = keras_training_step(model, keras.optimizers.SGD(0.01, momentum=0.9))
    images = tf.constant(np.float32(_synthetic(case["batch"], case["size"])))
    labels = tf.constant(_labels(case).astype(np.int32))
    result = _timed(lambda: step(images, labels).numpy(), case.get("warmup", 1), case["repeats"])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _torch_training(case):
    # deferred: one framework per process (module docstring)
    import torch
    import torch.nn.functional as F

    from danet_keras.convert.torch_reference import normalize_images

    reference = _torch_reference(case).train()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.01, momentum=0.9)
    images = normalize_images(_synthetic(case["batch"], case["size"]))
    labels = torch.from_numpy(_labels(case))

    def step():
        with _autocast(case):
            outputs = reference(images)
            total = sum(F.cross_entropy(outputs[name].float(), labels) for name in TRAINING_OUTPUTS)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    result = _timed(step, case.get("warmup", 1), case["repeats"])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _keras_serving(case):
    """The SavedModel's `serving_default` against the bare model, alternating calls."""
    # deferred: one framework per process (module docstring)
    import tensorflow as tf

    from danet_keras.export.saved_model import export_saved_model

    model = _keras_model(dict(case, variant="optimized"))
    pixels = _synthetic(case["batch"], case["size"])
    with tempfile.TemporaryDirectory(prefix="danet_serving_") as directory:
        # `model` is already the inference graph: export it as it is.
        export_saved_model(model, os.path.join(directory, "model"), optimize=False)
        serving = tf.saved_model.load(os.path.join(directory, "model"))
        signature = serving.signatures["serving_default"]
        images = tf.constant(pixels)
        floats = tf.constant(np.float32(pixels))
        bare = tf.function(lambda x: model(x, training=False)["logits"])
        calls = {
            "bare": lambda: bare(floats).numpy(),
            "saved_model": lambda: signature(images=images)["class_ids"].numpy(),
        }
        for call in calls.values():
            call()
        times = _alternating(calls, case.get("repeats", 3))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "median_s": medians["saved_model"],
        "bare_median_s": medians["bare"],
        "overhead": medians["saved_model"] / medians["bare"] - 1.0,
        "times_s": times["saved_model"],
        "peak_rss_mb": peak_rss_mb(),
    }


def _tflite_export(case):
    # deferred: one framework per process (module docstring)
    from danet_keras.export.tflite import export_tflite

    model = _keras_model(dict(case, variant="plain", precision="float32"))
    start = time.perf_counter()
    export_tflite(
        model,
        case["tflite_path"],
        quantization="int8" if case["precision"] == "int8" else None,
        representative_data=_synthetic(case.get("calibration_images", 4), case["size"], seed=9),
        input_size=tuple(case["size"]),
        num_calibration_images=case.get("calibration_images", 4),
        optimize=case.get("variant", "optimized") != "plain",
    )
    return {"export_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def _tflite_inference(case):
    """LiteRT with XNNPACK, without importing TensorFlow (a lean process)."""
    # deferred: one framework per process (module docstring)
    from ai_edge_litert import interpreter as litert

    interpreter = litert.Interpreter(
        model_path=case["tflite_path"], num_threads=case.get("threads") or os.cpu_count()
    )
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner("serving_default")
    images = _synthetic(1, case["size"])
    outputs = {}
    result = _timed(
        lambda: outputs.update(runner(images=images)), case.get("warmup", 1), case["repeats"]
    )
    result["peak_rss_mb"] = peak_rss_mb()
    _save_logits(case, np.asarray(outputs["logits"]))
    return result


# optimize_for_inference's levers, one at a time (None: the model as built).
LEVERS = {
    "plain": None,
    "fold BatchNorm (+ ReLU)": dict(winograd=False),
    "fold + Winograd F(4x4), dilation 1 only": dict(winograd_dilated=False, winograd=True),
    "fold + Winograd F(4x4), dilated too (default)": dict(winograd=True),
    "fold + Winograd F(2x2) instead": dict(winograd=True, winograd_tile_size=2),
}


def _keras_levers(case):
    """Each lever's latency, alternating the variants call by call in this process."""
    # deferred: one framework per process (module docstring)
    import tensorflow as tf

    from danet_keras.inference.optimize import optimize_for_inference

    model = _keras_model(dict(case, variant="plain", precision="float32"))
    policy = "mixed_bfloat16" if case.get("precision") == "bfloat16" else None
    images = tf.constant(np.float32(_synthetic(case["batch"], case["size"])))
    calls, logits = {}, {}
    for name, options in LEVERS.items():
        if options is None and policy:
            options = dict(fold_batchnorm=False, winograd=False)
        variant = (
            model
            if options is None
            else optimize_for_inference(model, dtype_policy=policy, **options)
        )
        forward = tf.function(lambda x, m=variant: m(x, training=False)["logits"])
        logits[name] = forward(images).numpy()  # the warm-up call
        calls[name] = lambda f=forward: f(images).numpy()
    times = _alternating(calls, case.get("repeats", 5))
    plain = statistics.median(times["plain"])
    reference = np.float64(logits["plain"])
    return {
        "levers": {
            name: {
                "median_s": statistics.median(t),
                "min_s": min(t),
                "ratio": statistics.median(t) / plain,
                "logit_diff": float(np.max(np.abs(logits[name] - reference)) / np.ptp(reference)),
            }
            for name, t in times.items()
        },
        "peak_rss_mb": peak_rss_mb(),
    }


def _matmul_peak(case):
    # Only the dtypes asked for: a run without bfloat16 rows should not depend on
    # the CPU's bfloat16 kernels.
    result = {
        f"{dtype}_gflops": matmul_peak_gflops(dtype)
        for dtype in case.get("dtypes", ("float32", "bfloat16"))
    }
    return dict(result, peak_rss_mb=peak_rss_mb())


def _reference_weights(case):
    """Official-layout weights with trained-like BatchNorm statistics, saved as `.npz`."""
    # deferred: one framework per process (module docstring)
    import torch

    from danet_keras.convert.torch_reference import DANetReference, randomize_like_trained

    torch.manual_seed(0)
    reference = DANetReference("official", **_model_config(case))
    randomize_like_trained(reference, [_synthetic(2, (97, 129), seed=100)])
    state = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    np.savez(case["weights"], **state)
    return {"path": case["weights"], "peak_rss_mb": peak_rss_mb()}


CASE_RUNNERS = {
    ("peak", "keras"): _matmul_peak,
    ("weights", "torch"): _reference_weights,
    ("inference", "keras"): _keras_inference,
    ("inference", "torch"): _torch_inference,
    ("inference", "tflite"): _tflite_inference,
    ("export", "tflite"): _tflite_export,
    ("training", "keras"): _keras_training,
    ("training", "torch"): _torch_training,
    ("serving", "keras"): _keras_serving,
    ("levers", "keras"): _keras_levers,
}


def run_case(case):
    """Measures one case in this process.

    Args:
        case: dict with `task` (`"inference"`, `"training"`, `"serving"`,
            `"export"`, `"peak"`, `"weights"`), `side` (`"keras"`,
            `"tflite"`, `"torch"`), `backbone`, `num_classes`, `size` [H, W],
            `batch`, `precision` (`"float32"`, `"bfloat16"`, `"int8"`),
            `variant` (Keras: `"plain"` the model as built, `"optimized"` its
            `optimize_for_inference` graph, `"naive"` that graph with the
            whole N x N attention in one block, `"winograd"` the graph with
            Winograd convolutions in any precision), `warmup`, `repeats`, and as
            needed `weights` (an `.npz` state dict of the official layout),
            `logits_path`, `tflite_path`, `output_stride`, `head_channels`,
            `threads`, `count_flops`.

    Returns:
        A dict of figures (`median_s`, `peak_rss_mb`, ...), or `{"error": ...}`
        when the case ran out of memory.
    """
    runner = CASE_RUNNERS[(case["task"], case["side"])]
    if case.get("threads") and case["side"] == "keras":
        # deferred: one framework per process (module docstring)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(case["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(case["threads"])
    try:
        return runner(case)
    except MemoryError as error:
        return {"error": f"out of memory ({type(error).__name__})"}
    except Exception as error:
        text = str(error)
        if "ResourceExhausted" in type(error).__name__ or "can't allocate memory" in text:
            return {"error": f"out of memory ({type(error).__name__})"}
        raise


def _rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def run_case_in_child(case, timeout_s=3600, max_rss_gb=DEFAULT_MAX_RSS_GB):
    """Runs `run_case(case)` in a fresh Python process and returns its figures.

    The child is stopped when its resident memory passes `max_rss_gb` (so a
    case that would need more never reaches the system's OOM killer) or when
    it runs longer than `timeout_s`.

    Returns:
        The child's dict, or `{"error": ...}`: `"out of memory: ..."` when
        it passed the limit or failed to allocate, a timeout, or the last
        line of its error output.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "danet_keras.apps.benchmark", json.dumps(case)],
            stdout=out,
            stderr=err,
            env=env,
        )
        start, stopped = time.monotonic(), None
        while process.poll() is None:
            if _rss_mb(process.pid) > 1024 * max_rss_gb:
                stopped = f"out of memory: passed {max_rss_gb:g} GB RSS, stopped"
            elif time.monotonic() - start > timeout_s:
                stopped = f"timeout after {timeout_s:.0f} s"
            if stopped:
                process.kill()
                process.wait()
                return {"error": stopped}
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith(RESULT_PREFIX)]
        if process.returncode == 0 and lines:
            return json.loads(lines[-1][len(RESULT_PREFIX) :])
        errors = [line for line in err.read().splitlines() if line.strip()]
        reason = errors[-1][:160] if errors else "no output"
        if process.returncode < 0:
            reason = f"killed by signal {-process.returncode} ({reason})"
        return {"error": reason}


# === Keras against PyTorch, one configuration ===
def agreement(actual_path, reference_path):
    """(max |difference| / logit range, argmax agreement) of two saved logit arrays."""
    actual, reference = np.load(actual_path), np.load(reference_path)
    relative = float(np.max(np.abs(actual - reference)) / np.ptp(reference))
    return relative, float(np.mean(actual.argmax(-1) == reference.argmax(-1)))


def compare_inference(
    backbone="resnet50",
    size=(512, 512),
    batch=1,
    precision="float32",
    num_classes=19,
    output_stride=8,
    repeats=3,
    variants=("plain", "optimized"),
    work_dir=None,
    max_rss_gb=DEFAULT_MAX_RSS_GB,
):
    """Forward latency and memory of Keras variants against the PyTorch reference.

    Each side runs in its own process with the same converted weights (the
    reference's, with trained-like BatchNorm statistics) on the same images;
    each Keras variant's logits are checked against the reference's.

    Args:
        backbone, size, batch, precision, num_classes, output_stride: the
            configuration (`precision`: `"float32"` or `"bfloat16"`,
            PyTorch under `torch.autocast`).
        repeats: timed calls after one warm-up.
        variants: Keras variants (see `run_case`).
        work_dir: where weights and logits go (default: a temporary dir).
        max_rss_gb: memory limit of each child.

    Returns:
        A list of row dicts: `side`, `variant`, `median_s`, `peak_rss_mb`,
        `ratio` (to PyTorch), `relative_logit_diff`, `agreement` (or `error`).
    """
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="danet_compare_"))
        base = dict(
            backbone=backbone,
            num_classes=num_classes,
            output_stride=output_stride,
            size=list(size),
            batch=batch,
            precision=precision,
            repeats=repeats,
        )
        weights = os.path.join(work_dir, f"{backbone}_{num_classes}_os{output_stride}.npz")
        if not os.path.exists(weights):
            made = run_case_in_child(dict(base, task="weights", side="torch", weights=weights))
            if "error" in made:
                raise RuntimeError(f"could not build the PyTorch reference: {made['error']}")
        rows = []
        cases = [("torch", "official")] + [("keras", v) for v in variants]
        for side, variant in cases:
            logits = os.path.join(work_dir, f"logits_{side}_{variant}.npy")
            case = dict(
                base,
                task="inference",
                side=side,
                variant=variant,
                weights=weights,
                logits_path=logits,
            )
            result = run_case_in_child(case, max_rss_gb=max_rss_gb)
            row = {"side": side, "variant": variant, **result}
            if "error" not in result and side == "keras" and "error" not in rows[0]:
                row["ratio"] = result["median_s"] / rows[0]["median_s"]
                row["relative_logit_diff"], row["agreement"] = agreement(
                    logits, os.path.join(work_dir, "logits_torch_official.npy")
                )
            rows.append(row)
        return rows


if __name__ == "__main__":
    print(RESULT_PREFIX + json.dumps(run_case(json.loads(sys.argv[1]))), flush=True)
