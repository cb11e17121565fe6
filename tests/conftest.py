"""Shared test set-up: quiet TensorFlow, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


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
