"""Deployment: SavedModel (TF Serving), TFLite / LiteRT, ONNX, and parity checks.

export_saved_model(model, path)                       serving signatures for TF Serving
export_tflite(model, path, quantization=None, ...)     float32 / float16 / dynamic / int8
export_onnx(model, path)                               through tf2onnx (`onnx` extra)
load_runner(path)                                      any artefact as images -> outputs
check_parity(model, path, images)                      artefact vs Keras model
"""

from danet_keras.export.onnx import export_onnx
from danet_keras.export.parity import ParityReport, check_parity, compare_outputs, synthetic_images
from danet_keras.export.runners import artefact_format, load_runner
from danet_keras.export.saved_model import build_export_archive, export_saved_model
from danet_keras.export.tflite import QUANTIZATIONS, export_tflite, tflite_interpreter, tflite_ops

__all__ = [
    "ParityReport",
    "QUANTIZATIONS",
    "artefact_format",
    "build_export_archive",
    "check_parity",
    "compare_outputs",
    "export_onnx",
    "export_saved_model",
    "export_tflite",
    "load_runner",
    "synthetic_images",
    "tflite_interpreter",
    "tflite_ops",
]
