import keras
import numpy as np
import pytest

import danet_keras
from danet_keras.inference.attention_maps import (
    channel_attention_maps,
    class_points,
    position_attention_maps,
)

from .export.conftest import IMAGE_SIZE
from .numerics import FLOAT32_EPS, KERNEL_ORDER_RTOL, assert_close_to_scale


def head_features(model, image, layer_name):
    layer = model.get_layer(layer_name)
    return layer, keras.Model(model.input, layer.input)(image[None].astype("float32"))


def test_position_maps_are_the_chosen_rows_of_the_layers_attention(
    attention_danet, attention_image
):
    model, image = attention_danet, attention_image
    maps = position_attention_maps(model, image, [(0, 0), (63, 95), (30, 50)])
    # 64x96 at output stride 8: an 8x12 feature map; pixel (30, 50) is in cell (3, 6).
    assert maps.weights.shape == (3, 8, 12)
    assert maps.feature_points == [(0, 0), (7, 11), (3, 6)]
    # Each map is one query's softmax over the 96 keys: it sums to 1, up to the
    # rounding of a float32 sum of 96 terms (at most 96 eps relative).
    np.testing.assert_allclose(maps.weights.sum(axis=(1, 2)), 1.0, rtol=96 * FLOAT32_EPS)
    layer, features = head_features(model, image, "position_attention")
    _, full = layer(features, return_attention_scores=True)
    full = np.asarray(full)[0]
    for weights, (row, column) in zip(maps.weights, maps.feature_points):
        # The same float32 projections and softmax on the same features, as a
        # matmul of other shapes (other kernels): compared to the map's scale.
        assert_close_to_scale(weights, full[row, column], KERNEL_ORDER_RTOL, "attention weights")
    assert not np.allclose(maps.weights[0], maps.weights[1])
    assert maps.upsampled().shape == (3, *IMAGE_SIZE)
    assert maps.class_ids.shape == IMAGE_SIZE
    assert maps.predicted_classes() == [int(maps.class_ids[y, x]) for y, x in maps.points]
    assert maps.gamma == pytest.approx(0.7)  # set by build_small_danet


def test_position_maps_refuse_points_outside_and_models_without_it(
    attention_danet, attention_image
):
    model, image = attention_danet, attention_image
    with pytest.raises(ValueError, match=r"\(y=64, x=0\) is outside the 64x96 image"):
        position_attention_maps(model, image, [(64, 0)])
    with pytest.raises(ValueError, match="at least one"):
        position_attention_maps(model, image, [])
    fcn = danet_keras.DANet(3, backbone="resnet18", attention=(), head_channels=8)
    with pytest.raises(ValueError, match="position attention maps need a model with position"):
        position_attention_maps(fcn, image, [(0, 0)])


def test_channel_maps_pick_channels_and_keep_the_layers_output(attention_danet, attention_image):
    model, image = attention_danet, attention_image
    maps = channel_attention_maps(model, image, channels=3)
    layer, features = head_features(model, image, "channel_attention")
    output, attention = layer(features, return_attention_scores=True)
    output = np.asarray(output)[0]
    spread = output.reshape(-1, output.shape[-1]).std(axis=0)
    assert maps.channels == np.argsort(-spread)[:3].tolist()
    np.testing.assert_array_equal(maps.features, np.moveaxis(output[..., maps.channels], -1, 0))
    # Rows of a softmax over 32 channels: float32 sums of 32 terms.
    np.testing.assert_allclose(maps.attention.sum(axis=1), 1.0, rtol=32 * FLOAT32_EPS)
    np.testing.assert_array_equal(maps.attention, np.asarray(attention)[0])
    assert maps.beta == pytest.approx(0.3)
    assert channel_attention_maps(model, image, [5, 1]).channels == [5, 1]
    assert maps.upsampled().shape == (3, *IMAGE_SIZE)
    with pytest.raises(ValueError, match=r"in \[0, 32\)"):
        channel_attention_maps(model, image, [32])


def test_class_points_lie_deep_inside_each_region():
    label = np.full((20, 30), 255)
    label[2:12, 3:13] = 4  # a 10x10 square
    label[15:20, :] = 1  # a band along the bottom border
    points = class_points(label, [4, 7, 1, 255])
    assert [class_id for class_id, _ in points] == [4, 1]
    (_, (y, x)), (_, (band_y, _)) = points
    assert 6 <= y <= 7 and 7 <= x <= 8  # the square's centre
    assert band_y == 17  # the image border counts as the band's border
    names = ["road", "car", "sky", "tree", "wall"]
    assert class_points(label, ["wall", "bus", "car", 4], class_names=names) == [
        points[0],
        points[1],
        points[0],
    ]
