import keras
import numpy as np
import pytest

from danet_keras.layers import SlicedConv2D

from ..numerics import KERNEL_ORDER_RTOL, assert_close_to_scale

CASES = {
    "3x3": dict(kernel_size=3, padding="same"),
    "dilated-relu": dict(kernel_size=3, padding="same", dilation_rate=2, activation="relu"),
    "strided-valid": dict(kernel_size=3, strides=2, padding="valid"),
    "1x1-no-bias": dict(kernel_size=1, use_bias=False),
}


@pytest.mark.parametrize("slices", [1, 2, 4])
@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_equals_the_whole_convolution(options, slices):
    images = np.random.default_rng(0).normal(size=(2, 11, 13, 6)).astype("float32")
    whole = keras.layers.Conv2D(8, **options)
    expected = whole(images)
    sliced = SlicedConv2D(8, slices=slices, **options)
    sliced.build(images.shape)
    sliced.set_weights(whole.get_weights())  # a Conv2D's weights load unchanged
    # The same products summed by the kernel library, in its own order per call.
    assert_close_to_scale(sliced(images), expected, KERNEL_ORDER_RTOL)


def test_config_round_trip_and_saved_model(tmp_path):
    inputs = keras.Input((9, 9, 4))
    outputs = SlicedConv2D(6, 3, slices=3, padding="same", activation="relu", name="c")(inputs)
    model = keras.Model(inputs, outputs)
    config = model.get_layer("c").get_config()
    assert config["slices"] == 3 and config["filters"] == 6 and "groups" not in config
    assert SlicedConv2D.from_config(config).get_config() == config
    path = str(tmp_path / "sliced.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(1).normal(size=(1, 9, 9, 4)).astype("float32")
    assert isinstance(loaded.get_layer("c"), SlicedConv2D)
    np.testing.assert_array_equal(loaded(images), model(images))  # same graph, same weights


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(filters=8, slices=0), "slices"),
        (dict(filters=8, slices=True), "slices"),
        (dict(filters=8, slices=3), "multiple"),
        (dict(filters=8, slices=2, groups=2), "ungrouped"),
    ],
)
def test_refuses_what_it_cannot_slice(arguments, message):
    with pytest.raises(ValueError, match=message):
        SlicedConv2D(kernel_size=3, **arguments)
