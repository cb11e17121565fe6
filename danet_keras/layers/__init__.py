"""Keras layers of DANet: the two attention modules, resizing, normalisation, and the
inference graph's Winograd convolution."""

from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike, bilinear_resize
from danet_keras.layers.winograd import WinogradConv2D

__all__ = [
    "ChannelAttention",
    "ImageNormalization",
    "PositionAttention",
    "ResizeLike",
    "WinogradConv2D",
    "bilinear_resize",
]
