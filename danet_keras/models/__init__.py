"""Segmentation models."""

from danet_keras.models.danet import DANet

__all__ = ["DANet"]
