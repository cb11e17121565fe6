"""The benchmark cases, each measured in a process of its own (`run_case`).

A *case* (a dict, see `run_case`) names one side (`"keras"`, `"tflite"` or
`"torch"`: the project's PyTorch reference DANet, `convert.torch_reference`,
holding the same weights), one precision and one task (inference, a training
step, the SavedModel serving path, ...). `child.run_case_in_child` runs one in
a child process under a memory limit.

TensorFlow, Keras, PyTorch, LiteRT and the package's own model code are
imported inside the functions that use them: a case's child process loads
only its own side's framework, so that its peak RSS is its own.
"""

import contextlib
import os
import statistics
import tempfile
import time

import numpy as np

from danet_keras.apps.benchmark.measure import (
    alternating,
    benchmark_images,
    matmul_peak_gflops,
    model_flops,
    peak_rss_mb,
    timed,
)
from danet_keras.models.conversion.checkpoint import read_state_dict
from danet_keras.utils.backends import keras_backend

# One block for the whole N x N energy: the official code's memory behaviour.
NAIVE_ATTENTION_BLOCK = 1 << 30
KERAS_VARIANTS = ("plain", "optimized", "naive", "winograd")
TRAINING_OUTPUTS = ("logits", "position_logits", "channel_logits")
LOGIT_STRIDE = 4  # saved logits keep every 4th pixel in each direction


def _synthetic(batch, size, seed=5):
    return benchmark_images(batch, tuple(size), seed=seed)


def _model_config(case):
    config = {"num_classes": case["num_classes"], "backbone": case["backbone"]}
    for key in ("output_stride", "head_channels", "remat"):
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

    result = timed(run, case.get("warmup", 1), case.get("repeats", 3))
    result["peak_rss_mb"] = peak_rss_mb()
    _save_logits(case, outputs["logits"])
    if case.get("count_flops"):
        result["flops"] = model_flops(model, case["size"], case["batch"])
    return result


def _torch_reference(case):
    # deferred: one framework per process (module docstring)
    import torch

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

    result = timed(run, case.get("warmup", 1), case.get("repeats", 3))
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
    result = timed(lambda: step(images, labels).numpy(), case.get("warmup", 1), case["repeats"])
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

    result = timed(step, case.get("warmup", 1), case["repeats"])
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
        times = alternating(calls, case.get("repeats", 3))
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
    result = timed(
        lambda: outputs.update(runner(images=images)), case.get("warmup", 1), case["repeats"]
    )
    result["peak_rss_mb"] = peak_rss_mb()
    _save_logits(case, np.asarray(outputs["logits"]))
    return result


# optimize_for_inference's levers, one at a time (None: the model as built).
LEVERS = {
    "plain": None,
    "fold BatchNorm (+ ReLU)": dict(winograd=False, sliced_convs=None),
    "fold + sliced convolutions where measured faster (the default)": dict(winograd=False),
    "fold + Winograd F(4x4), dilation 1 only": dict(winograd_dilated=False, winograd=True),
    "fold + Winograd F(4x4), dilated too (winograd=True)": dict(winograd=True),
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
    times = alternating(calls, case.get("repeats", 5))
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


def _backend_model(case):
    """The plain DANet of the case under this process's Keras backend (the case's `backend`)."""
    # deferred: one framework per process (module docstring)
    import keras

    from danet_keras.models.danet import DANet

    keras.utils.set_random_seed(0)
    return DANet(**_model_config(case))


def _backend_inference(case):
    """Inference through Keras' own predict step: `tf.function`, `jax.jit` or PyTorch eager."""
    model = _backend_model(case)
    images = np.float32(_synthetic(case["batch"], case["size"]))
    outputs = {}

    def run():
        outputs.update(model.predict_on_batch(images))

    result = timed(run, case.get("warmup", 1), case.get("repeats", 3))
    result.update(peak_rss_mb=peak_rss_mb(), backend=keras_backend())
    _save_logits(case, outputs["logits"])
    return result


def _backend_training(case):
    """A step of `compile()`'s recipe (three cross-entropies, LayerwiseSGD): `train_on_batch`."""
    model = _backend_model(case)
    model.compile(total_steps=1000)
    images = np.float32(_synthetic(case["batch"], case["size"]))
    labels = _labels(case).astype(np.int32)
    result = timed(
        lambda: model.train_on_batch(images, labels), case.get("warmup", 1), case["repeats"]
    )
    result.update(peak_rss_mb=peak_rss_mb(), backend=keras_backend())
    return result


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
    ("inference", "backend"): _backend_inference,
    ("training", "backend"): _backend_training,
}


def run_case(case):
    """Measures one case in this process.

    Args:
        case: dict with `task` (`"inference"`, `"training"`, `"serving"`,
            `"export"`, `"peak"`, `"weights"`), `side` (`"keras"`,
            `"tflite"`, `"torch"`, or `"backend"`: the model under the Keras
            backend `backend` of the case, through Keras' own compiled
            steps), `backbone`, `num_classes`, `size` [H, W],
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
