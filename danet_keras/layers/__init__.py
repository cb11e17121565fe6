"""Keras layers of DANet: the two attention modules, resizing, normalisation, and the
inference graph's Winograd convolution and channel split."""

from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike, bilinear_resize
from danet_keras.layers.split import ChannelSplit
from danet_keras.layers.winograd import WinogradConv2D

__all__ = [
    "ChannelAttention",
    "ChannelSplit",
    "ImageNormalization",
    "PositionAttention",
    "ResizeLike",
    "WinogradConv2D",
    "bilinear_resize",
]
