"""The same model, weights and outputs under TensorFlow, JAX and PyTorch.

KERAS_BACKEND must be set before Keras is imported, so each backend runs
`tests/backend_checks.py` in a process of its own; this process (TensorFlow,
the suite's backend) prepares the exchange folder, saves its model and loads
the others'. Order: JAX (saves, loads TensorFlow's model and its own),
PyTorch (saves, loads all three), JAX again (loads PyTorch's); each process
but the last also runs the layer, backbone, model, training and refusal checks.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from danet_keras.data import make_demo_city
from danet_keras.export.parity import synthetic_images
from danet_keras.training.strategy import make_strategy
from danet_keras.utils.backends import require_tensorflow_backend

from . import backend_checks
from .numerics import KERNEL_ORDER_RTOL, assert_classes_agree, assert_logits_close

BACKENDS = ("tensorflow", "jax", "torch")
OTHER_BACKENDS = ("jax", "torch")
CHECKS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backend_checks.py")

pytestmark = pytest.mark.slow


def run_checks(backend, exchange, *options):
    """Runs backend_checks.py under `backend`; returns its JSON result."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.run(
        [sys.executable, CHECKS_SCRIPT, str(exchange), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


# The converted checkpoints: small PyTorch references of both layouts (ResNet-18; its
# last stage has 2 blocks, so no multi-grid), mmsegmentation's with its deep stem and
# auxiliary head.
CHECKPOINTS = {
    "official": dict(num_classes=5, backbone="resnet18", align_corners=True),
    "mmseg": dict(num_classes=5, backbone="resnet18", stem="deep", aux_head=True),
}


def convert_references(folder, images):
    """Converts a PyTorch reference of each layout to `folder/preset_<layout>`."""
    torch = pytest.importorskip("torch")
    from danet_keras.convert import convert_checkpoint
    from danet_keras.convert.torch_reference import (
        DANetReference,
        normalize_images,
        randomize_like_trained,
    )

    for layout, config in CHECKPOINTS.items():
        torch.manual_seed(0)
        calibration = [synthetic_images(2, (97, 129), seed=100)]
        reference = randomize_like_trained(DANetReference(layout, **config), calibration)
        state = {key: value.detach().clone() for key, value in reference.state_dict().items()}
        preset = folder / f"preset_{layout}"
        convert_checkpoint(state, arch=layout, preset_dir=preset, multi_grid=())
        with torch.no_grad():
            logits = reference(normalize_images(images))["logits"].permute(0, 2, 3, 1).numpy()
        np.save(folder / f"reference_{layout}.npy", logits)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """The shared folder: images, the demo city, converted presets, TensorFlow's model."""
    folder = tmp_path_factory.mktemp("backends")
    # Smooth images (few near-ties among the classes), 48x64.
    images = synthetic_images(2, (48, 64), seed=7).astype("float32")
    np.save(folder / "input.npy", images)
    make_demo_city(folder / "city", num_train=4, num_val=2, size=(32, 64))
    convert_references(folder, images)
    backend_checks.save_this_backend(str(folder), images)
    return folder


@pytest.fixture(scope="module")
def runs(exchange):
    """{backend: its checks' results}; afterwards every backend has loaded every model."""
    results = {"jax": run_checks("jax", exchange)}
    results["torch"] = run_checks("torch", exchange)
    results["jax_load"] = run_checks("jax", exchange, "--load-only")
    images = np.load(exchange / "input.npy")
    results["tensorflow"] = {"loaded": backend_checks.model_checks(str(exchange), images)}
    return results


PRESETS = tuple(f"preset_{layout}" for layout in CHECKPOINTS)


def test_a_model_saved_under_each_backend_loads_under_each_other(exchange, runs):
    assert set(runs["jax"]["loaded"]) == {"tensorflow", "jax", *PRESETS}
    assert set(runs["torch"]["loaded"]) == {*BACKENDS, *PRESETS}
    assert set(runs["jax_load"]["loaded"]) == {*BACKENDS, *PRESETS}
    assert set(runs["tensorflow"]["loaded"]) == {*BACKENDS, *PRESETS}
    reference = np.load(exchange / "logits_tensorflow.npy")
    for saver in BACKENDS:
        # The same NumPy weights, built and saved under each backend.
        saved = np.load(exchange / f"logits_{saver}.npy")
        assert_logits_close(saved, reference)
        for loader in BACKENDS:
            logits = np.load(exchange / f"logits_{saver}_under_{loader}.npy")
            # Other kernels (XLA, ATen, oneDNN) of the same float32 network:
            # tests/numerics.py's kernel-order tolerance.
            assert_logits_close(logits, saved)
            assert_classes_agree(np.argmax(logits, -1), saved, KERNEL_ORDER_RTOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluation_and_prediction_paths(exchange, runs, backend):
    logits = np.load(exchange / f"logits_{backend}.npy")
    # The compiled inference step against the plain call: other kernels, other fusion.
    assert_logits_close(np.load(exchange / f"strategy_logits_{backend}.npy"), logits)
    assert_classes_agree(np.load(exchange / f"runner_ids_{backend}.npy"), logits)


@pytest.mark.parametrize("layout", CHECKPOINTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_converted_checkpoints_load_on_every_backend(exchange, runs, layout, backend):
    reference = np.load(exchange / f"reference_{layout}.npy")
    logits = np.load(exchange / f"logits_preset_{layout}_under_{backend}.npy")
    # PyTorch's kernels against the backend's: tests/numerics.py.
    assert_logits_close(logits, reference)
    assert_classes_agree(np.argmax(logits, -1), reference)


# Gradients of the recomputed blocks against autodiff of one block, both float32:
# see RECOMPUTED_GRADIENT_RTOL in tests/layers/test_attention.py (the same shapes).
RECOMPUTED_GRADIENT_RTOL = 1e-5


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_chunked_attention_gradients_equal_the_single_block_form(runs, backend):
    attention = runs[backend]["attention"]
    names = attention["names"]
    assert len(names) == 8  # inputs, 3 kernels, 3 biases, gamma
    for block_size, result in attention["blocks"].items():
        # Blocks of the same softmax rows: the same sums, in the same order.
        assert result["output_error"] <= RECOMPUTED_GRADIENT_RTOL * result["output_scale"]
        errors, scales = result["gradient_errors"], result["gradient_scales"]
        for name, error, scale in zip(names, errors, scales):
            if "key_bias" in name:
                # Zero in exact arithmetic (softmax over keys ignores Q_j . b_k):
                # rounding noise of dK, at the key kernel's scale.
                scale = scales[names.index("key_kernel")]
            else:
                assert scale > 0, name
            assert error <= RECOMPUTED_GRADIENT_RTOL * scale, (block_size, name, error, scale)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_recomputed_attention_keeps_no_energy_block_for_the_backward_pass(runs, backend):
    attention = runs[backend]["attention"]
    # Autodiff keeps the blocks' softmaxes (N x N values in all); the
    # recomputed gradient keeps Q, K, V only.
    assert attention["kept_autodiff"], attention
    assert attention["kept_recomputed"] == []


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_resizing_both_corner_conventions(runs, backend):
    # Float32 against float64 weights: two 2-term weighted sums of values up
    # to ~3.5, a few 1e-6 (as tests/layers/test_resize.py).
    for case, error in runs[backend]["resize"].items():
        assert error <= 1e-5, case


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backbone_runs_and_round_trips_its_config(runs, backend):
    saved = runs[backend]["saved"]
    # 32x32 at output stride 8: stages at 1/4, 1/8, 1/8, 1/8.
    assert saved["backbone_features"] == [
        [2, 8, 8, 64],
        [2, 4, 4, 128],
        [2, 4, 4, 256],
        [2, 4, 4, 512],
    ]
    assert saved["backbone_config_round_trip"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_train_on_the_demo_city(runs, backend):
    result = runs[backend]["train"]
    history = result["history"]
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"]).all()
    # The validation pass ran with the MeanIoU metric.
    assert 0 <= history["val_logits_mean_iou"][0] <= 1
    assert result["final_model"] and result["logs"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_remat_takes_the_same_training_step(runs, backend):
    # The same ops run again for the gradient: only kernel choices may differ.
    result = runs[backend]["remat"]
    for error, scale in zip(result["errors"], result["scales"]):
        assert error <= KERNEL_ORDER_RTOL * scale


def test_jax_data_parallel_step_equals_one_device_step(runs):
    result = runs["jax"]["train"]["data_parallel"]
    assert result["devices"] == [1, 2]
    one, two = result["losses"]
    # The same float32 step on one device and split over two (batch statistics
    # and gradients all-reduced): another summation order of the same sums.
    assert abs(one - two) <= KERNEL_ORDER_RTOL * abs(one)
    for error, scale in zip(result["weight_errors"], result["weight_scales"]):
        assert error <= KERNEL_ORDER_RTOL * scale


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_only_options_are_refused_in_one_line(runs, backend):
    refusals = runs[backend]["refusals"]
    export = refusals["export_saved_model"]
    assert export and "\n" not in export and "KERAS_BACKEND=tensorflow" in export
    assert "KERAS_BACKEND=tensorflow" in refusals["mirrored"]
    if backend == "jax":
        assert refusals["data_parallel"] is None
    else:
        assert "KERAS_BACKEND=jax" in refusals["data_parallel"]


def test_tensorflow_refuses_the_jax_strategy_and_allows_export():
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):
        make_strategy("data_parallel")
    require_tensorflow_backend("export")
