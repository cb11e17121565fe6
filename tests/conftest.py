"""Shared test set-up: quiet TensorFlow, deterministic seeds."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """`danet-keras demo --quick`, run once as a user would: (output dir, the process).

    Its best model was trained with `danet_keras.train` on the demo city (Cityscapes
    classes), so tests of what a trained model carries use it too.
    """
    output_dir = tmp_path_factory.mktemp("quick_demo") / "demo"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "danet_keras.cli.main",
            "demo",
            "--quick",
            "--output",
            str(output_dir),
            "--verbose",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return output_dir, process


@pytest.fixture(scope="session")
def attention_danet():
    """The export tests' small DANet (5 classes, both attentions non-trivial), built once."""
    from .export.conftest import build_small_danet

    return build_small_danet()


@pytest.fixture(scope="session")
def attention_image():
    """One smooth RGB image of the small DANet's test size (64x96)."""
    from danet_keras.export import synthetic_images

    from .export.conftest import IMAGE_SIZE

    return synthetic_images(1, IMAGE_SIZE, seed=3)[0]
