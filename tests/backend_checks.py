"""The checks of one Keras backend, run as a script in a process of its own.

    KERAS_BACKEND=jax python tests/backend_checks.py EXCHANGE_DIR [--load-only]

KERAS_BACKEND must be set before Keras is imported, so `tests/test_backends.py`
runs this file once per backend and reads the JSON line it prints last. The
exchange folder holds what the backends share: `input.npy`, the `.keras`
files each backend saved (`saved_<backend>.keras`) with their logits
(`logits_<backend>.npy`), official and mmsegmentation checkpoints converted
to presets (`preset_<layout>`, with the PyTorch reference's logits
`reference_<layout>.npy`), and the demo city. Each run saves its own model,
then loads every `.keras` file and preset there (its own too) and writes
their logits as `logits_<source>_under_<backend>.npy`.

Under JAX the process has two CPU devices (set below, before JAX starts):
`train` with `keras.distribution.DataParallel` over both, against one device.
"""

import contextlib
import io
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND") == "jax":
    # Before JAX initialises: two host devices for the data-parallel check.
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import danet_keras  # noqa: E402
from danet_keras.export.runners import KerasRunner  # noqa: E402
from danet_keras.inference.strategies import multi_scale_logits  # noqa: E402
from danet_keras.layers import PositionAttention, bilinear_resize  # noqa: E402

BACKEND = keras.backend.backend()
# 45 positions of 16 channels, 2 key channels: a (B, rows, 45) tensor can only
# be an energy or softmax block.
FEATURES_SHAPE = (2, 5, 9, 16)
POSITIONS = 45
SMALL_DANET = dict(num_classes=5, backbone="resnet18", head_channels=16, aux_head=True)


def small_danet(**overrides):
    """The small DANet every backend builds; its weights come from the exchange files."""
    return danet_keras.DANet(**{**SMALL_DANET, **overrides})


def numpy_weights(model, seed=0):
    """Deterministic weights for `model`: the same on every backend."""
    rng = np.random.default_rng(seed)
    weights = []
    for weight in model.get_weights():
        if weight.ndim == 0:  # gamma, beta: the attentions matter
            weights.append(np.asarray(0.6, weight.dtype))
        elif weight.ndim == 1:  # biases, BatchNorm (variances must be positive)
            weights.append(rng.uniform(0.5, 1.5, weight.shape).astype(weight.dtype))
        else:
            fan_in = int(np.prod(weight.shape[:-1]))
            weights.append(rng.normal(0, np.sqrt(2 / fan_in), weight.shape).astype(weight.dtype))
    return weights


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def gradients(layer, x, cotangent):
    """d sum(layer(x) * cotangent) / d (x, trainable weights), with this backend's autodiff."""
    if BACKEND == "jax":
        import jax

        def loss(trainable, x):
            outputs, _ = layer.stateless_call(trainable, [], x)
            return (outputs * cotangent).sum()

        trainable = [v.value for v in layer.trainable_variables]
        grad_weights, grad_x = jax.grad(loss, argnums=(0, 1))(trainable, x)
        return [grad_x, *grad_weights]
    if BACKEND == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        (layer(x) * torch.tensor(cotangent)).sum().backward()
        grads = [x.grad] + [v.value.grad for v in layer.trainable_variables]
        for variable in layer.trainable_variables:
            variable.value.grad = None
        return grads
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * cotangent)
    return tape.gradient(loss, [x] + layer.trainable_weights)


def energy_blocks_kept(layer, x):
    """Shapes of the (B, rows, N) blocks that the backward pass keeps from the forward pass."""
    if BACKEND == "jax":
        import jax
        from jax.ad_checkpoint import print_saved_residuals

        def loss(trainable, x):
            outputs, _ = layer.stateless_call(trainable, [], x)
            return outputs.sum()

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            print_saved_residuals(loss, [v.value for v in layer.trainable_variables], x)
        jax.clear_caches()
        # One line per residual, e.g. "f32[7,2,7,45] from ..." (a loop's residuals
        # are stacked over its iterations).
        shapes = [line.split("[")[1].split("]")[0] for line in printed.getvalue().splitlines()]
        kept = [tuple(int(n) for n in shape.split(",")) for shape in shapes if shape]
    elif BACKEND == "torch":
        import torch

        kept = []

        def pack(tensor):
            kept.append(tuple(tensor.shape))
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            layer(torch.tensor(x, requires_grad=True)).sum()
    else:
        return None  # tests/layers/test_attention.py reads TensorFlow's graphs
    return [shape for shape in kept if len(shape) >= 3 and shape[-1] == POSITIONS]


def attention_checks():
    """Chunked (recomputed) against single-block autodiff: outputs, gradients, memory."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=FEATURES_SHAPE).astype("float32")
    cotangent = rng.normal(size=FEATURES_SHAPE).astype("float32")
    plain = PositionAttention(recompute=False)  # one block (small map), autodiff
    plain.build(x.shape)
    plain.set_weights(
        [rng.normal(0, 0.3, w.shape).astype("float32") for w in plain.get_weights()[:-1]]
        + [np.asarray(0.8, "float32")]
    )
    names = ["inputs"] + [v.name for v in plain.trainable_variables]
    expected = [to_numpy(g) for g in gradients(plain, x, cotangent)]
    reference = to_numpy(plain(x))
    results = {"names": names, "blocks": {}}
    for block_size in (7, 4, 45):  # 7 blocks (last 3 rows), 12 (last 1 row), one
        layer = PositionAttention(block_size=block_size)
        layer.build(x.shape)
        layer.set_weights(plain.get_weights())
        actual = [to_numpy(g) for g in gradients(layer, x, cotangent)]
        results["blocks"][block_size] = {
            "output_error": float(np.abs(to_numpy(layer(x)) - reference).max()),
            "output_scale": float(np.abs(reference).max()),
            "gradient_errors": [float(np.abs(a - e).max()) for a, e in zip(actual, expected)],
            "gradient_scales": [float(np.abs(e).max()) for e in expected],
        }
    autodiff = PositionAttention(block_size=7, recompute=False)
    recomputed = PositionAttention(block_size=7)
    for layer in (autodiff, recomputed):
        layer.build(x.shape)
        layer.set_weights(plain.get_weights())
    results["kept_autodiff"] = energy_blocks_kept(autodiff, x)
    results["kept_recomputed"] = energy_blocks_kept(recomputed, x)
    return results


def resize_reference(x, size, align_corners):
    """PyTorch's bilinear interpolation (both corner conventions) in NumPy."""

    def matrix(in_size, out_size):
        if align_corners:
            scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
            source = np.arange(out_size) * scale
        else:
            source = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0)
        low = np.minimum(np.floor(source).astype(int), in_size - 1)
        high = np.minimum(low + 1, in_size - 1)
        weights = np.zeros((out_size, in_size))
        weights[np.arange(out_size), low] += 1 - (source - low)
        weights[np.arange(out_size), high] += source - low
        return weights

    rows, columns = matrix(x.shape[1], size[0]), matrix(x.shape[2], size[1])
    return np.einsum("oh,bhwc,pw->bopc", rows, x, columns)


def resize_checks():
    x = np.random.default_rng(3).normal(size=(1, 6, 9, 4)).astype("float32")
    errors = {}
    for align_corners in (True, False):
        for size in ((47, 71), (3, 4), (1, 1)):
            actual = to_numpy(bilinear_resize(x, size, align_corners=align_corners))
            expected = resize_reference(x, size, align_corners)
            errors[f"{align_corners}_{size[0]}x{size[1]}"] = float(np.abs(actual - expected).max())
    return errors


def model_checks(exchange, images):
    """Loads every saved model and converted preset; writes its logits on `images`.

    Returns:
        {saver backend, or "preset_<layout>": the loaded model's class name}.
    """
    loaded = {}
    for name in sorted(os.listdir(exchange)):
        path = os.path.join(exchange, name)
        if name.startswith("saved_") and name.endswith(".keras"):
            source, model = name[len("saved_") : -len(".keras")], keras.saving.load_model(path)
        elif name.startswith("preset_"):
            source, model = name, danet_keras.DANet.from_preset(path)
        else:
            continue
        logits = to_numpy(model(images, training=False)["logits"])
        np.save(os.path.join(exchange, f"logits_{source}_under_{BACKEND}.npy"), logits)
        loaded[source] = type(model).__name__
    return loaded


def save_this_backend(exchange, images):
    """Saves this backend's model (weights from NumPy) with its logits; runs the backbone."""
    model = small_danet()
    model.set_weights(numpy_weights(model))
    logits = to_numpy(model(images, training=False)["logits"])
    np.save(os.path.join(exchange, f"logits_{BACKEND}.npy"), logits)
    model.save(os.path.join(exchange, f"saved_{BACKEND}.keras"))
    # What evaluate and predict run: the compiled logits function and the Keras runner.
    np.save(
        os.path.join(exchange, f"strategy_logits_{BACKEND}.npy"), multi_scale_logits(model, images)
    )
    np.save(
        os.path.join(exchange, f"runner_ids_{BACKEND}.npy"),
        KerasRunner(model)(images.astype("uint8"))["class_ids"],
    )
    # The backbone alone, as a serialisable model: its config round-trips.
    backbone = danet_keras.backbones.DilatedResNet(depth=18, output_stride=8)
    features = backbone(images[:, :32, :32] / 255.0)
    clone = danet_keras.backbones.DilatedResNet.from_config(backbone.get_config())
    return {
        "backbone_features": [list(to_numpy(f).shape) for f in features.values()],
        "backbone_config_round_trip": clone.get_config() == backbone.get_config(),
    }


def refusals():
    """The TensorFlow-only options refused in one line under this backend."""
    from danet_keras.training.strategy import make_strategy

    messages = {}
    asks = {
        "export_saved_model": lambda: danet_keras.export.export_saved_model(None, "unused"),
        "mirrored": lambda: make_strategy("mirrored"),
        "data_parallel": lambda: make_strategy("data_parallel"),
    }
    for name, ask in asks.items():
        try:
            ask()
            messages[name] = None
        except ValueError as error:
            messages[name] = str(error)
    return messages


def train_checks(exchange):
    """`danet_keras.train` on the demo city (the reader, tf.data pipeline, recipe, MeanIoU)."""
    from danet_keras.training.trainer import train

    settings = dict(model={"backbone": "resnet18", "head_channels": 16}, verbose=0, seed=3)
    # The defaults' callbacks too: TensorBoard logs, backups.
    result = train(
        dict(
            dataset="demo_city",
            data_dir=os.path.join(exchange, "city"),
            crop_size=32,
            batch_size=2,
            val_batch_size=2,
            epochs=1,
            steps_per_epoch=2,
            output_dir=os.path.join(exchange, f"run_{BACKEND}"),
            **settings,
        )
    )
    checks = {
        "history": {key: [float(v) for v in values] for key, values in result.history.items()},
        "final_model": bool(result.final_model and os.path.exists(result.final_model)),
        "logs": os.path.isdir(os.path.join(result.output_dir, "logs")),
    }
    if BACKEND == "jax":
        checks["data_parallel"] = data_parallel_checks(exchange, settings)
    return checks


def data_parallel_checks(exchange, settings):
    """One training step on one device and on two (DataParallel): the same step."""
    import tensorflow as tf

    from danet_keras.training.trainer import train

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    labels = images.argmax(-1).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    runs = {}
    for strategy in ("one_device", "data_parallel"):
        result = train(
            dict(
                dataset="custom",
                num_classes=3,
                strategy=strategy,
                epochs=1,
                steps_per_epoch=1,
                batch_size=4,
                learning_rate=0.01,
                validation=False,
                tensorboard=False,
                backup=False,
                output_dir=os.path.join(exchange, f"step_{strategy}"),
                **settings,
            ),
            train_data=data,
        )
        weights = result.model.weights
        runs[strategy] = {
            "loss": float(result.history["loss"][0]),
            "devices": len(weights[0].value.sharding.device_set),
            "weights": [to_numpy(v) for v in weights],
        }
    one, two = runs["one_device"], runs["data_parallel"]
    return {
        "devices": [one["devices"], two["devices"]],
        "losses": [one["loss"], two["loss"]],
        "weight_errors": [
            float(np.abs(a - b).max()) for a, b in zip(one["weights"], two["weights"])
        ],
        "weight_scales": [float(np.abs(a).max()) for a in one["weights"]],
    }


def remat_checks():
    """One `fit` step with the backbone rematerialised and without: the same step.

    The recomputation must neither change the gradients nor move BatchNorm's
    statistics a second time (`layers/remat.py`), whatever the backend's remat.
    """
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 5, (2, 32, 32)).astype("int32")
    weights = {}
    for remat in (False, True):
        model = small_danet(dropout=0.0, remat=remat)
        model.set_weights(numpy_weights(model))
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(images, labels, batch_size=2, epochs=1, verbose=0, shuffle=False)
        weights[remat] = [to_numpy(v) for v in model.weights]
    return {
        "errors": [float(np.abs(a - b).max()) for a, b in zip(weights[False], weights[True])],
        "scales": [float(np.abs(a).max()) for a in weights[False]],
    }


def main(exchange, load_only):
    results = {"backend": BACKEND}
    images = np.load(os.path.join(exchange, "input.npy"))
    if not load_only:
        results["saved"] = save_this_backend(exchange, images)
    results["loaded"] = model_checks(exchange, images)
    if not load_only:
        results["attention"] = attention_checks()
        results["resize"] = resize_checks()
        results["refusals"] = refusals()
        results["remat"] = remat_checks()
        results["train"] = train_checks(exchange)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], "--load-only" in sys.argv[2:])
