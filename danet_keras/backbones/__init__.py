"""Dilated ResNet backbones."""

from danet_keras.backbones.resnet import (
    RESNET_DEPTHS,
    DilatedResNet,
    load_keras_applications_weights,
)

__all__ = ["RESNET_DEPTHS", "DilatedResNet", "load_keras_applications_weights"]
