"""PyTorch -> Keras conversion of official DANet and mmsegmentation DANet checkpoints.

    load_torch_checkpoint(model, path_or_state_dict, arch="auto", strict=True)
    config_from_state_dict(state_dict, arch="auto")   what the tensors determine
    model_config(state_dict, arch="auto", **overrides) + published defaults
    convert_checkpoint(path, output, ...)              file -> .weights.h5 / .keras
    read_state_dict(path)                              .pth(.tar) / .safetensors / .npz
    verify_conversion(model, checkpoint, arch, config) parity with the PyTorch reference

Importing this package does not import torch; reading `.pth` files,
`verify_conversion` and `danet_keras.convert.torch_reference` need it
(`pip install danet-keras[torch]`).
"""

from danet_keras.convert.checkpoint import read_state_dict
from danet_keras.convert.config import (
    config_from_state_dict,
    detect_arch,
    model_config,
)
from danet_keras.convert.converter import convert_checkpoint, save_atomically
from danet_keras.convert.loader import ConversionReport, load_torch_checkpoint
from danet_keras.convert.names import ARCHS
from danet_keras.convert.verify import compare_with_reference, verify_conversion

__all__ = [
    "ARCHS",
    "ConversionReport",
    "compare_with_reference",
    "config_from_state_dict",
    "convert_checkpoint",
    "detect_arch",
    "load_torch_checkpoint",
    "model_config",
    "read_state_dict",
    "save_atomically",
    "verify_conversion",
]
