"""A small DANet whose attention matters, shared by the export and predict tests."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest
import tensorflow as tf

import danet_keras
from danet_keras.export import export_saved_model, synthetic_images

IMAGE_SIZE = (64, 96)  # 8 x 12 = 96 feature positions at output stride 8
ATTENTION_BLOCK_SIZE = 32  # -> 3 query blocks: the chunked path is what gets exported
NUM_CLASSES = 5


def calibrate_batchnorm(model, images):
    """Sets every BatchNormalization's moving statistics to those of `images`.

    A fresh model's unit moving variances let activations grow through the
    ResNet, which no trained model does; quantization and tolerance checks
    need realistic ranges.
    """
    layers = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images.astype("float32"), training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def build_small_danet():
    keras.utils.set_random_seed(7)
    model = danet_keras.DANet(
        NUM_CLASSES,
        backbone="resnet18",
        head_channels=32,
        attention_block_size=ATTENTION_BLOCK_SIZE,
        align_corners=True,
    )
    calibrate_batchnorm(model, synthetic_images(8, IMAGE_SIZE, seed=100))
    # gamma = beta = 0 (the initial values) would make both attentions the
    # identity, and an export that broke them would go unnoticed.
    model.get_layer("position_attention").gamma.assign(0.7)
    model.get_layer("channel_attention").beta.assign(0.3)
    return model


# tf2onnx deep-copies the whole graph, weights included, before each of its ~30
# optimisation passes, and the copies live until a full garbage collection: converting
# `small_danet` at 32x32 peaks at 5.4 GB, which a test worker then keeps. A process of
# its own gives it all back.
def run_script(script, arguments, tmp_path, timeout):
    """Runs `script` in a fresh interpreter outside the repository; returns its JSON line."""
    path = tmp_path / "script.py"
    path.write_text(script)
    process = subprocess.run(
        [sys.executable, str(path), *map(str, arguments)],
        cwd=tmp_path,  # `import danet_keras` must not be possible by accident
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert process.returncode == 0, (
        f"exit status {process.returncode}\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    )
    return json.loads(process.stdout.strip().splitlines()[-1])


ONNX_EXPORT_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import keras

    from danet_keras.export import export_onnx

    keras_file, path, size = sys.argv[1:4]
    input_size = None if size == "dynamic" else tuple(int(s) for s in size.split("x"))
    print(json.dumps(export_onnx(keras.saving.load_model(keras_file), path, input_size=input_size)))
    """
)


def export_onnx_in_a_fresh_process(keras_file, path, input_size=None):
    """`export_onnx` of the model saved at `keras_file`, run in a new Python process.

    Returns:
        `path`, as a string.
    """
    size = "dynamic" if input_size is None else "x".join(str(int(s)) for s in input_size)
    arguments = [keras_file, path, size]
    return run_script(ONNX_EXPORT_SCRIPT, arguments, Path(path).parent, timeout=600)


@pytest.fixture(scope="session")
def small_danet():
    return build_small_danet()


@pytest.fixture(scope="session")
def default_export_dir(small_danet, tmp_path_factory):
    """`small_danet` exported with every default (signatures, limits, inference graph)."""
    return export_saved_model(small_danet, str(tmp_path_factory.mktemp("export") / "danet"))


@pytest.fixture(scope="session")
def default_export(default_export_dir):
    """`default_export_dir` loaded in this process, as TF Serving loads it (once: a
    loaded SavedModel's functions stay registered in TensorFlow until the process ends)."""
    return tf.saved_model.load(default_export_dir)


@pytest.fixture(scope="session")
def test_images():
    """Two batches: two images at the model's test size and one at another size."""
    return synthetic_images(2, IMAGE_SIZE, seed=1), synthetic_images(1, (48, 80), seed=2)
