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


@pytest.mark.parametrize("height", [1, 2, 3, 4, 5, 11, 12])
@pytest.mark.parametrize("slices", [1, 2])
@pytest.mark.parametrize("options", [CASES["3x3"], CASES["dilated-relu"]], ids=["3x3", "dilated"])
def test_row_bands_equal_the_whole_convolution_at_every_height(options, slices, height):
    # Heights below 2 x the halo (dilation 2: 4 rows) run whole; odd ones make unequal halves.
    images = np.random.default_rng(2).normal(size=(3, height, 7, 6)).astype("float32")
    whole = keras.layers.Conv2D(8, **options)
    expected = whole(images)
    banded = SlicedConv2D(8, slices=slices, bands=2, **options)
    banded.build(images.shape)
    banded.set_weights(whole.get_weights())
    assert_close_to_scale(banded(images), expected, KERNEL_ORDER_RTOL)


def test_row_bands_with_a_height_known_only_when_run():
    import tensorflow as tf

    layer = SlicedConv2D(8, 3, bands=2, padding="same", dilation_rate=2)
    layer.build((None, None, None, 6))
    whole = keras.layers.Conv2D(8, 3, padding="same", dilation_rate=2)
    whole.build((None, None, None, 6))
    whole.set_weights(layer.get_weights())
    run = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 6])])
    for height in (1, 3, 4, 9, 16):
        images = np.random.default_rng(height).normal(size=(2, height, 5, 6)).astype("float32")
        assert_close_to_scale(run(images), whole(images), KERNEL_ORDER_RTOL)


def test_inputs_above_the_memory_bound_run_whole(monkeypatch):
    import tensorflow as tf

    from danet_keras.layers import sliced_conv

    # Bands copy their input: 2 images of 8x5x6 may, 2 of 9x5x6 (one more row) may not.
    monkeypatch.setattr(sliced_conv, "MAX_BAND_INPUT_ELEMENTS", 2 * 8 * 5 * 6)
    layer = SlicedConv2D(4, 3, bands=2, padding="same")
    layer.build((None, None, None, 6))
    # The banded path made visible: it gives zeros here.
    monkeypatch.setattr(layer, "_in_bands", lambda x: layer._convolve(x) * 0.0)
    dynamic = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 6])])
    rng = np.random.default_rng(5)
    small, large = (rng.normal(size=(2, h, 5, 6)).astype("float32") for h in (8, 9))
    for run in (layer, dynamic):  # shapes known while tracing, and only when run
        assert not np.any(keras.ops.convert_to_numpy(run(small)))
        assert np.all(keras.ops.convert_to_numpy(run(large)) != 0)


def test_config_round_trip_and_saved_model(tmp_path):
    inputs = keras.Input((9, 9, 4))
    outputs = SlicedConv2D(6, 3, slices=3, bands=2, padding="same", activation="relu", name="c")(
        inputs
    )
    model = keras.Model(inputs, outputs)
    config = model.get_layer("c").get_config()
    assert config["slices"] == 3 and config["bands"] == 2 and "groups" not in config
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
        (dict(filters=8, bands=3), "bands"),
        (dict(filters=8, bands=2, strides=2, padding="same"), "stride-1"),
        (dict(filters=8, bands=2, padding="valid"), "same"),
    ],
)
def test_refuses_what_it_cannot_slice(arguments, message):
    with pytest.raises(ValueError, match=message):
        SlicedConv2D(kernel_size=3, **arguments)
