"""PyTorch -> Keras conversion of official DANet and mmsegmentation DANet checkpoints.

    load_torch_checkpoint(model, path_or_state_dict, arch="auto", strict=True)
    config_from_state_dict(state_dict, arch="auto")   what the tensors determine
    model_config(state_dict, arch="auto", **overrides) + published defaults
    convert_checkpoint(path, output, ...)              file -> .weights.h5 / .keras
    read_state_dict(path)                              .pth(.tar) / .safetensors / .npz
    verify_conversion(model, checkpoint, arch, config) parity with the PyTorch reference

This package is the public face of the conversion: reading checkpoints and mapping
their tensors to Keras weights live in `danet_keras.models.conversion`, below the
models, because `DANet.from_preset` converts a published checkpoint when it
downloads one; writing outputs and checking parity with the PyTorch reference live
here. Importing this package imports neither torch nor TensorFlow (its names
resolve on first use); reading `.pth` files,
`verify_conversion` and `danet_keras.convert.torch_reference` need it
(`pip install danet-keras[torch]`).
"""

from typing import TYPE_CHECKING

from danet_keras.utils.lazy import lazy_attributes

_EXPORTS = {
    "ARCHS": "danet_keras.models.conversion.names",
    "ConversionReport": "danet_keras.models.conversion.loader",
    "compare_with_reference": "danet_keras.convert.verify",
    "config_from_state_dict": "danet_keras.models.conversion.config",
    "convert_checkpoint": "danet_keras.convert.converter",
    "detect_arch": "danet_keras.models.conversion.config",
    "load_torch_checkpoint": "danet_keras.models.conversion.loader",
    "model_config": "danet_keras.models.conversion.config",
    "read_state_dict": "danet_keras.models.conversion.checkpoint",
    "save_atomically": "danet_keras.convert.converter",
    "verify_conversion": "danet_keras.convert.verify",
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
    from danet_keras.convert.converter import convert_checkpoint, save_atomically  # noqa: F401
    from danet_keras.convert.verify import compare_with_reference, verify_conversion  # noqa: F401
    from danet_keras.models.conversion.checkpoint import read_state_dict  # noqa: F401
    from danet_keras.models.conversion.config import (  # noqa: F401
        config_from_state_dict,
        detect_arch,
        model_config,
    )
    from danet_keras.models.conversion.loader import ConversionReport, load_torch_checkpoint  # noqa: F401
    from danet_keras.models.conversion.names import ARCHS  # noqa: F401
