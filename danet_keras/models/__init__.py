"""Segmentation models, and the one preset registry (`danet_keras.models.presets`)."""

from danet_keras.utils.lazy import lazy_attributes

# Lazy, so that the registry (`models.presets`, no TensorFlow) imports without the model:
# the backbone module reads its presets from there.
__getattr__, __dir__ = lazy_attributes(__name__, {"DANet": "danet_keras.models.danet"})
__all__ = ["DANet"]
