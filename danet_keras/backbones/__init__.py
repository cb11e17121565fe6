"""Dilated ResNet backbones and their presets."""

from danet_keras.backbones.presets import BACKBONE_PRESETS
from danet_keras.backbones.resnet import (
    RESNET_DEPTHS,
    DilatedResNet,
    load_keras_applications_weights,
)

__all__ = ["BACKBONE_PRESETS", "RESNET_DEPTHS", "DilatedResNet", "load_keras_applications_weights"]
