import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.layers import winograd
from danet_keras.layers.winograd import WinogradConv2D, winograd_kernel, winograd_matrices

from ..numerics import assert_close_to_scale, skip_bfloat16_where_capped_away

# Winograd against a float64 direct convolution, relative to the output's
# scale. The transforms' coefficients amplify float32 rounding: each
# transformed value is a sum of up to 4 (F(2x2)) or 36 (F(4x4)) inputs with
# weights up to 1 or 25 (B^T's rows), and the output transform sums 16 or 36
# products with weights up to 1 or 64, so F(4x4) carries ~100x the rounding of a
# direct convolution (~1e-7 here) and F(2x2) ~10x. Measured: F(4x4) 2e-6 to
# 4e-6 (5 channels) and 2e-5 (512 and 2048 channels, 64x64), F(2x2) 1e-7 to
# 1.3e-6: the bounds below hold those with a margin of 2-5.
WINOGRAD_RTOL = {4: 1e-4, 2: 5e-6}


def direct_conv(x, kernel, bias, dilation):
    out = tf.nn.conv2d(np.float64(x), np.float64(kernel), 1, "SAME", dilations=dilation).numpy()
    return out + bias


def random_case(shape, out_channels, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype("float32")
    kernel = rng.normal(size=(3, 3, shape[-1], out_channels)).astype("float32")
    return x, kernel, rng.normal(size=out_channels).astype("float32")


@pytest.mark.parametrize("tile_size", [2, 4])
@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("size", [(7, 9), (16, 16), (1, 1)])
def test_matches_a_direct_convolution(tile_size, dilation, size):
    # Odd sizes: partial tiles and sub-images of unequal size.
    x, kernel, bias = random_case((2, *size, 5), 6)
    layer = WinogradConv2D.from_kernel(kernel, bias, tile_size=tile_size, dilation_rate=dilation)
    expected = direct_conv(x, kernel, bias, dilation)
    assert_close_to_scale(layer(x), expected, WINOGRAD_RTOL[tile_size])


def test_kernel_transformed_in_chunks_equals_at_once(monkeypatch):
    x, kernel, bias = random_case((1, 9, 9, 4), 7, seed=3)
    whole = WinogradConv2D.from_kernel(kernel, bias)
    monkeypatch.setattr(winograd, "TRANSFORM_CHUNK_ELEMENTS", 36 * 4 * 3)  # 3 channels a chunk
    chunked = WinogradConv2D.from_kernel(kernel, bias)
    np.testing.assert_array_equal(chunked.kernel.numpy(), whole.kernel.numpy())


def test_dynamic_shapes_give_the_static_result_and_keep_static_shapes():
    x, kernel, bias = random_case((1, 13, 11, 8), 4, seed=1)
    layer = WinogradConv2D.from_kernel(kernel, bias, dilation_rate=2)
    dynamic = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 8])])
    np.testing.assert_array_equal(dynamic(x).numpy(), layer(x).numpy())
    static = tf.function(layer).get_concrete_function(tf.TensorSpec([1, 13, 11, 8]))
    assert static.outputs[0].shape.as_list() == [1, 13, 11, 4]
    assert layer(keras.Input((None, None, 8))).shape == (None, None, None, 4)


def test_transformed_kernel_matches_the_definition():
    # U = G g G^T at one tile position, written out for a single channel pair.
    kernel = np.random.default_rng(2).normal(size=(3, 3, 1, 1))
    _, g, _ = winograd_matrices(2)
    transformed = winograd_kernel(kernel, 2)
    assert transformed.shape == (16, 1, 1)
    # float32 arithmetic (winograd_kernel's) against float64: a few eps.
    np.testing.assert_allclose(
        transformed[:, 0, 0], (g @ kernel[..., 0, 0] @ g.T).ravel(), rtol=1e-6, atol=1e-7
    )


@skip_bfloat16_where_capped_away()
def test_config_round_trip_and_bfloat16_compute():
    x, kernel, bias = random_case((1, 8, 8, 4), 3)
    layer = WinogradConv2D.from_kernel(kernel, bias, tile_size=2, dtype="mixed_bfloat16")
    config = layer.get_config()
    assert (config["filters"], config["tile_size"], config["dilation_rate"]) == (3, 2, 1)
    clone = WinogradConv2D.from_config(config)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    out = clone(x)
    assert out.dtype == "bfloat16"
    # bfloat16 keeps 8 significant bits: 2**-8 of the scale per rounding, a
    # few roundings deep (input, kernel, transforms, products).
    assert_close_to_scale(np.float32(out), direct_conv(x, kernel, bias, 1), 0.05)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tile_size"):
        WinogradConv2D(4, tile_size=3)
    with pytest.raises(ValueError, match="kernel"):
        winograd_kernel(np.zeros((5, 5, 1, 1)), 4)
    with pytest.raises(ValueError, match="positive"):
        WinogradConv2D(0)
