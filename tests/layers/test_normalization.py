import keras
import numpy as np
import pytest

from danet_keras.layers import ImageNormalization


def test_torch_mode_uses_imagenet_mean_and_std():
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 3, 4, 3)).astype("float32")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    # Float32 against float64: three roundings per element, amplified by 1/std
    # (<= 4.5) at values up to 2.7: ~1.5e-6.
    np.testing.assert_allclose(ImageNormalization("torch")(x), (x / 255 - mean) / std, atol=1e-5)


def test_caffe_mode_equals_keras_applications_preprocessing():
    x = np.random.default_rng(1).uniform(0, 255, size=(2, 3, 4, 3)).astype("float32")
    expected = keras.applications.resnet.preprocess_input(x.copy())
    # Both float32, subtracting means from values up to 255 in another order:
    # one rounding of 255 is 1.5e-5.
    np.testing.assert_allclose(ImageNormalization("caffe")(x), expected, atol=1e-4)


def test_integer_images_are_accepted():
    x = np.full((1, 2, 2, 3), 128, "uint8")
    assert ImageNormalization()(x).dtype == "float32"


def test_bad_mode_and_channel_count_raise_value_errors():
    with pytest.raises(ValueError, match="mode"):
        ImageNormalization("tf")
    with pytest.raises(ValueError):
        ImageNormalization()(np.zeros((1, 4, 4, 4), "float32"))
