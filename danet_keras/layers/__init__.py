"""Keras layers of DANet: the two attention modules, resizing, normalisation."""

from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike, bilinear_resize

__all__ = [
    "ChannelAttention",
    "ImageNormalization",
    "PositionAttention",
    "ResizeLike",
    "bilinear_resize",
]
