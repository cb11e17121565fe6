"""The attention a trained DANet computes for an image: what its figures show.

    maps = position_attention_maps(model, image, [(60, 100), (20, 200)])
    maps.weights[0]        # (h, w): where pixel (60, 100) looks; sums to 1
    maps.upsampled()       # (2, H, W) the same weights at the image's size
    channels = channel_attention_maps(model, image, channels=4)
    channels.features      # (4, h, w): the four most varied attended channels

One forward pass of the model gives the head's features and the prediction;
the attention is then computed from those features with the attention layers'
own weights (for position attention only the chosen pixels' rows, never the
whole N x N map). `danet_keras.visualize.plot_position_attention`
and `plot_channel_attention` draw these; `predict`, the demo and the notebook
call them.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from scipy.ndimage import distance_transform_edt


def _head_pass(model, image, layer_names):
    """The inputs of the named attention layers and the predicted classes for one image."""
    layers = {}
    for name in layer_names:
        try:
            layers[name] = model.get_layer(name)
        except ValueError as error:
            kind = name.split("_")[0]
            raise ValueError(
                f"{kind} attention maps need a model with {kind} attention."
            ) from error
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"`image` must be one RGB image (H, W, 3), got shape {image.shape}.")
    outputs = {name: layer.input for name, layer in layers.items()}
    outputs["logits"] = model.get_layer("logits").output
    results = keras.Model(model.input, outputs)(image[None].astype(np.float32), training=False)
    class_ids = np.asarray(results["logits"])[0].argmax(-1)
    return layers, results, class_ids


def _feature_position(point, image_size, feature_size):
    """The feature-map cell (row, column) that holds image pixel `point` = (y, x)."""
    (y, x), (height, width), (rows, columns) = point, image_size, feature_size
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"attention point (y={y}, x={x}) is outside the {height}x{width} image.")
    return min(int(y * rows / height), rows - 1), min(int(x * columns / width), columns - 1)


def upsample_maps(maps, size):
    """(P, h, w) maps bilinearly resized (half-pixel centres) to `size` = (H, W): (P, H, W)."""
    maps = np.asarray(maps, np.float32)
    return tf.image.resize(maps[..., None], tuple(size)).numpy()[..., 0]


@dataclasses.dataclass
class PositionAttentionMaps:
    """Where the position attention of chosen pixels looks.

    Attributes:
        points: the (y, x) image pixels.
        feature_points: the (row, column) feature-map cell of each point (the
            query whose attention is shown).
        weights: float32 (P, h, w), the softmax attention weights of each
            point's query over the h x w key positions: each map sums to 1
            (paper eq. 1, s_ji for fixed j).
        image_size: (H, W) of the image.
        class_ids: int (H, W), the model's predicted classes.
        gamma: the learned scale of the attended term (alpha in paper eq. 2):
            how much the attention changes the features.
    """

    points: list
    feature_points: list
    weights: np.ndarray
    image_size: tuple
    class_ids: np.ndarray
    gamma: float

    def upsampled(self):
        """(P, H, W) float32: `weights` bilinearly resized to the image (values unscaled)."""
        return upsample_maps(self.weights, self.image_size)

    def predicted_classes(self):
        """The predicted class id at each point."""
        return [int(self.class_ids[y, x]) for y, x in self.points]


def position_attention_maps(model, image, points):
    """The position attention (PAM) of each chosen pixel, from one forward pass.

    Args:
        model: a `danet_keras.DANet` with position attention.
        image: uint8 (or float in [0, 255]) RGB image (H, W, 3).
        points: (y, x) pixel coordinates in the image.

    Returns:
        A `PositionAttentionMaps`.

    Raises:
        ValueError: the model has no position attention, or a point is
            outside the image.
    """
    points = [(int(y), int(x)) for y, x in points]
    if not points:
        raise ValueError("`points` must hold at least one (y, x) pixel.")
    layers, results, class_ids = _head_pass(model, image, ["position_attention"])
    layer = layers["position_attention"]
    features = np.asarray(results["position_attention"])  # (1, h, w, C)
    image_size = tuple(np.asarray(image).shape[:2])
    cells = [_feature_position(point, image_size, features.shape[1:3]) for point in points]
    # Only the chosen queries' rows of the attention: O(N) memory per point.
    weights = np.asarray(layer.query_attention(features, cells), np.float32)[0]
    gamma = float(np.asarray(layer.gamma))
    return PositionAttentionMaps(points, cells, weights, image_size, class_ids, gamma)


@dataclasses.dataclass
class ChannelAttentionMaps:
    """Channels of the channel attention's output, and its channel-to-channel weights.

    Attributes:
        channels: the channel indices shown.
        features: float32 (len(channels), h, w): those channels of the CAM
            module's output E = beta * (attention . A) + A (paper eq. 4), the
            "attended channel maps" of the paper's Fig. 4.
        attention: float32 (C, C): row c holds the weights channel c gives to
            every channel (each row sums to 1).
        beta: the learned scale of the attended term.
        image_size: (H, W) of the image.
        class_ids: int (H, W), the model's predicted classes.
    """

    channels: list
    features: np.ndarray
    attention: np.ndarray
    beta: float
    image_size: tuple
    class_ids: np.ndarray

    def upsampled(self):
        """(len(channels), H, W) float32: `features` bilinearly resized to the image."""
        return upsample_maps(self.features, self.image_size)


def channel_attention_maps(model, image, channels=4):
    """The channel attention (CAM) output of chosen channels, from one forward pass.

    Args:
        model: a `danet_keras.DANet` with channel attention.
        image: uint8 (or float in [0, 255]) RGB image (H, W, 3).
        channels: channel indices, or an int k: the k channels whose output
            varies most over the image (largest standard deviation over
            positions), in that order.

    Returns:
        A `ChannelAttentionMaps`.

    Raises:
        ValueError: the model has no channel attention, or a channel index
            is out of range.
    """
    layers, results, class_ids = _head_pass(model, image, ["channel_attention"])
    layer = layers["channel_attention"]
    output, attention = layer(results["channel_attention"], return_attention_scores=True)
    output = np.asarray(output, np.float32)[0]  # (h, w, C)
    count = output.shape[-1]
    if isinstance(channels, (int, np.integer)):
        if not 1 <= channels <= count:
            raise ValueError(f"`channels` must be between 1 and {count}, got {channels}.")
        spread = output.reshape(-1, count).std(axis=0)
        channels = np.argsort(-spread, kind="stable")[: int(channels)].tolist()
    channels = [int(c) for c in channels]
    if not channels or any(not 0 <= c < count for c in channels):
        raise ValueError(f"channel indices must be in [0, {count}), got {channels}.")
    return ChannelAttentionMaps(
        channels=channels,
        features=np.moveaxis(output[..., channels], -1, 0),
        attention=np.asarray(attention, np.float32)[0],
        beta=float(np.asarray(layer.beta)),
        image_size=tuple(np.asarray(image).shape[:2]),
        class_ids=class_ids,
    )


def class_points(label_map, classes, class_names=None, ignore_index=255):
    """One pixel well inside the region of each class: the farthest from its border.

    For choosing attention points from a label or prediction map (a point on
    an edge would show the attention of a mixed feature cell).

    Args:
        label_map: (H, W) integer class ids.
        classes: class ids, or class names with `class_names`, in the order
            wanted; classes absent from the map (or from `class_names`) are
            skipped.
        class_names: the names of the class ids, to look `classes` up.
        ignore_index: a value that is never a class.

    Returns:
        A list of `(class id, (y, x))`.
    """
    if class_names is not None:
        names = list(class_names)
        classes = [
            names.index(c) if isinstance(c, str) else c
            for c in classes
            if not isinstance(c, str) or c in names
        ]
    label_map = np.asarray(label_map)
    found = []
    for class_id in classes:
        if class_id == ignore_index:
            continue
        mask = label_map == class_id
        if not mask.any():
            continue
        # Zero padding makes the image border a region border too.
        depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(np.argmax(depth), depth.shape)
        found.append((int(class_id), (int(y), int(x))))
    return found
