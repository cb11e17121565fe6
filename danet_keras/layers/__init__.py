"""Keras layers of DANet: the two attention modules, resizing, normalisation, and the
inference graph's Winograd and sliced convolutions."""

from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike, bilinear_resize
from danet_keras.layers.sliced_conv import SlicedConv2D
from danet_keras.layers.winograd import WinogradConv2D

__all__ = [
    "ChannelAttention",
    "ImageNormalization",
    "PositionAttention",
    "ResizeLike",
    "SlicedConv2D",
    "WinogradConv2D",
    "bilinear_resize",
]
