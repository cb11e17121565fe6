"""ONNX export through tf2onnx (the `onnx` extra: `pip install danet-keras[onnx]`).

The ONNX graph is converted from the same serving function as the
SavedModel's `serving_default`: input `images` uint8 [B, H, W, 3] (any batch,
height and width unless `input_size` fixes them), outputs `class_ids` int32
[B, H, W], `probabilities` and `logits` float32 [B, H, W, K]. The position
attention's block loop becomes an ONNX `Loop`. The model's class names and
colours are in the file's `metadata_props` (`export.metadata`).
"""

import tensorflow as tf

from danet_keras.data.classes import model_classes
from danet_keras.export.metadata import add_onnx_classes
from danet_keras.export.saved_model import images_spec, segmentation_outputs
from danet_keras.utils.backends import require_tensorflow_backend
from danet_keras.utils.output_paths import check_file_artefact, write_artefact_bytes

DEFAULT_OPSET = 17


def export_onnx(model, path, input_size=None, opset=DEFAULT_OPSET, overwrite=False):
    """Writes `model` as an ONNX file.

    Args:
        model: the Keras segmentation model, e.g. `danet_keras.DANet`.
        path: output `.onnx` file.
        input_size: None (dynamic height and width) or (height, width).
        opset: ONNX opset version.
        overwrite: replace an `.onnx` file that danet-keras wrote at `path`
            earlier; any other existing file is refused
            (`danet_keras.utils.output_paths`).

    Returns:
        `path`, as a string.
    """
    require_tensorflow_backend("ONNX export")
    check_file_artefact(path, "onnx", overwrite)
    try:  # deferred: tf2onnx is optional (the `onnx` extra)
        import tf2onnx
    except ImportError as error:
        raise ImportError("ONNX export needs tf2onnx: `pip install danet-keras[onnx]`.") from error
    if input_size is not None:
        input_size = tuple(int(s) for s in input_size)
    signature = [images_spec(None, input_size)]
    serve = tf.function(
        lambda images: segmentation_outputs(model, images), input_signature=signature
    )
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    add_onnx_classes(model_proto, model_classes(model))
    write_artefact_bytes(path, "onnx", model_proto.SerializeToString(), overwrite)
    return str(path)
