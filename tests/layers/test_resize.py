import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.layers import ResizeLike, bilinear_resize

from ..backend_checks import resize_reference


@pytest.mark.parametrize("out_size", [(29, 43), (5, 6), (1, 1), (13, 2), (3, 4)])
def test_align_corners_matches_reference(out_size):
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    result = bilinear_resize(x, out_size, align_corners=True)
    # Float32 against float64: interpolation weights rounded (~6 eps) and two
    # 2-term weighted sums of values up to ~3.5: a few 1e-6.
    np.testing.assert_allclose(result, resize_reference(x, out_size, align_corners=True), atol=1e-5)


def test_align_corners_keeps_corner_pixels():
    x = np.random.default_rng(1).normal(size=(1, 4, 7, 2)).astype("float32")
    y = np.asarray(bilinear_resize(x, (25, 31), align_corners=True))
    for (i, j), (k, m) in [
        ((0, 0), (0, 0)),
        ((0, -1), (0, -1)),
        ((-1, 0), (-1, 0)),
        ((-1, -1), (-1, -1)),
    ]:
        # Corner weights are exactly 1 and 0: at most one rounding.
        np.testing.assert_allclose(y[0, i, j], x[0, k, m], atol=1e-6)


def test_half_pixel_mode_equals_tf_image_resize():
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 3)).astype("float32")
    expected = tf.image.resize(x, (17, 23), method="bilinear")
    # The same op in the same process (half-pixel mode is tf.image.resize).
    np.testing.assert_allclose(
        bilinear_resize(x, (17, 23), align_corners=False), expected, atol=1e-6
    )


def test_matches_torch_interpolate_both_ways():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).normal(size=(1, 6, 9, 4)).astype("float32")
    for align_corners in (True, False):
        expected = (
            torch.nn.functional.interpolate(
                torch.from_numpy(x).permute(0, 3, 1, 2),
                size=(47, 71),
                mode="bilinear",
                align_corners=align_corners,
            )
            .permute(0, 2, 3, 1)
            .numpy()
        )
        # Two runtimes, float32 weights computed in another order: as the NumPy reference.
        np.testing.assert_allclose(
            bilinear_resize(x, (47, 71), align_corners=align_corners), expected, atol=1e-5
        )


@pytest.mark.parametrize("align_corners", [True, False])
def test_resize_like_follows_the_reference_size_at_run_time(align_corners):
    features = keras.Input((None, None, 4))
    images = keras.Input((None, None, 3))
    model = keras.Model([features, images], ResizeLike(align_corners)(features, images))
    for h, w in [(31, 45), (8, 8)]:
        out = model([np.ones((1, 4, 6, 4), "float32"), np.zeros((1, h, w, 3), "float32")])
        assert out.shape == (1, h, w, 4)
        # Weights of each output sum to 1 up to a rounding or two.
        np.testing.assert_allclose(out, 1.0, atol=1e-6)


@pytest.mark.parametrize("align_corners", [True, False])
def test_resize_traces_with_sizes_known_only_at_run_time(align_corners):
    @tf.function(
        input_signature=[tf.TensorSpec((None, None, None, 2)), tf.TensorSpec((2,), tf.int32)]
    )
    def resize(x, size):
        return bilinear_resize(x, (size[0], size[1]), align_corners=align_corners)

    x = np.random.default_rng(4).normal(size=(1, 5, 7, 2)).astype("float32")
    for size in [(11, 13), (3, 4)]:
        # A traced graph against eager ops: elementwise gathers and 2-term sums,
        # no reduction whose order a kernel could change; one rounding of ~3.
        np.testing.assert_allclose(
            resize(x, tf.constant(size)), bilinear_resize(x, size, align_corners), atol=1e-6
        )


def test_resize_like_round_trips_through_config():
    layer = ResizeLike(align_corners=True, name="up")
    assert ResizeLike.from_config(layer.get_config()).get_config() == layer.get_config()
