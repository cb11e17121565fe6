"""Shared fixtures of the conversion tests: small calibrated PyTorch references."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from danet_keras.convert.torch_reference import DANetReference, randomize_like_trained  # noqa: E402
from danet_keras.export.parity import synthetic_images  # noqa: E402

# Odd on purpose: every stride-2 layer meets an odd size.
IMAGE_SIZE = (97, 129)
# A small model for everything but the ResNet-50/101 parity tests.
SMALL_CONFIG = {"num_classes": 5, "backbone": "resnet18", "align_corners": True}


def _reference(arch, seed=0, **config):
    torch.manual_seed(seed)
    reference = DANetReference(arch, **config)
    return randomize_like_trained(
        reference, [synthetic_images(2, IMAGE_SIZE, seed=seed + 100)], seed=seed
    )


@pytest.fixture(scope="session")
def make_reference():
    """Builds a `DANetReference` with random weights and calibrated BatchNorm statistics."""
    return _reference


@pytest.fixture(scope="session")
def test_images():
    """Two smooth uint8 RGB images of IMAGE_SIZE, unlike the calibration images."""
    return synthetic_images(2, IMAGE_SIZE, seed=7)


@pytest.fixture(scope="session")
def small_official():
    """(reference, DANet config) of a calibrated official-layout ResNet-18 DANet."""
    return _reference("official", **SMALL_CONFIG), dict(SMALL_CONFIG)


@pytest.fixture(scope="session")
def small_official_state_dict(small_official):
    return {key: value.clone() for key, value in small_official[0].state_dict().items()}


def _meta_state_dict(arch, **config):
    with torch.device("meta"):
        return DANetReference(arch, **config).state_dict()


@pytest.fixture(scope="session")
def meta_state_dict():
    """Key names and shapes of a reference's state dict (meta tensors, nothing allocated)."""
    return _meta_state_dict


@pytest.fixture(scope="session")
def zeros_state_dict():
    """A numpy state dict of zeros with a reference's keys and shapes."""

    def build(arch, **config):
        return {
            k: np.zeros(v.shape, np.float32) for k, v in _meta_state_dict(arch, **config).items()
        }

    return build
