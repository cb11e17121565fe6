"""Class names and colours inside exported artefacts, and reading them back.

What each format holds (`danet_keras.data.classes` has the JSON layout):

- SavedModel: a `metadata` signature without inputs that returns
  `class_names` string [K], `palette` int32 [K, 3] and `classes_json` string
  [], which a client with only TensorFlow reads
  (`tf.saved_model.load(path).signatures["metadata"]()`, or TF Serving's
  predict API), and the file `assets/labels.txt`, one class name per line (TF
  Model Garden's label map), for clients without TensorFlow.
- TFLite: a metadata entry of the flatbuffer named `danet_keras.classes`
  whose buffer is the JSON text.
- ONNX: the model's `metadata_props` entry `danet_keras.classes`.
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from danet_keras.data.classes import from_json, to_json

# The key under which TFLite metadata and ONNX `metadata_props` hold `to_json`.
METADATA_KEY = "danet_keras.classes"
# The SavedModel signature that returns them, and its asset file of names.
METADATA_SIGNATURE = "metadata"
LABELS_FILE = "labels.txt"


def add_metadata_signature(archive, classes):
    """Adds the `metadata` signature (no inputs) to a `keras.export.ExportArchive`.

    Args:
        archive: the archive.
        classes: a `DatasetInfo` (e.g. `model_classes(model)`).
    """
    names = list(classes.class_names)
    palette = np.asarray(classes.palette, np.int32)
    text = to_json(classes)

    def metadata():
        return {
            "class_names": tf.constant(names, tf.string),
            "palette": tf.constant(palette),
            "classes_json": tf.constant(text),
        }

    archive.add_endpoint(METADATA_SIGNATURE, metadata, input_signature=[])


def write_labels_asset(saved_model_dir, classes):
    """Writes `assets/labels.txt` (one class name per line) into a SavedModel directory."""
    assets = os.path.join(saved_model_dir, "assets")
    os.makedirs(assets, exist_ok=True)
    path = os.path.join(assets, LABELS_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in classes.class_names))
    return path


def saved_model_classes(loaded):
    """(class_names, palette) of a loaded SavedModel, or None without a `metadata` signature."""
    signature = loaded.signatures.get(METADATA_SIGNATURE)
    if signature is None:
        return None
    return from_json(signature()["classes_json"].numpy())


def add_tflite_classes(model_bytes, classes):
    """The `.tflite` flatbuffer `model_bytes` with a `danet_keras.classes` metadata entry."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(to_json(classes).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_KEY.encode()]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def tflite_classes(path):
    """(class_names, palette) from a `.tflite` file's metadata, or None."""
    with open(path, "rb") as f:
        data = f.read()
    model = schema.Model.GetRootAs(data, 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == METADATA_KEY.encode():
            return from_json(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None


def add_onnx_classes(model_proto, classes):
    """Sets the `danet_keras.classes` entry of an ONNX `ModelProto`'s `metadata_props`."""
    import onnx  # deferred: onnx is optional (the `onnx` extra)

    # set_model_props replaces every entry: keep the others.
    props = {p.key: p.value for p in model_proto.metadata_props}
    onnx.helper.set_model_props(model_proto, {**props, METADATA_KEY: to_json(classes)})
    return model_proto


def onnx_classes(session):
    """(class_names, palette) from an onnxruntime session's model metadata, or None."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return None if text is None else from_json(text)
