"""Dilated ResNet backbones and their presets (the registry is `danet_keras.models.presets`)."""

from danet_keras.models.dilated_resnet import (
    RESNET_DEPTHS,
    DilatedResNet,
    load_keras_applications_weights,
)
from danet_keras.models.presets import BACKBONE_PRESETS

__all__ = ["BACKBONE_PRESETS", "RESNET_DEPTHS", "DilatedResNet", "load_keras_applications_weights"]
