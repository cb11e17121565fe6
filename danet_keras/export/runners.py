"""One calling convention for every artefact: Keras model, SavedModel, TFLite, ONNX.

A runner maps uint8 RGB images (B, H, W, 3) to NumPy outputs `class_ids`
(B, H, W), `probabilities` (B, H, W, K) and `logits`, or those of them that
the artefact returns (a SavedModel exported with `outputs=("class_ids",)`
returns the class ids only). `predict` and the export parity report run artefacts through it.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from danet_keras.export.metadata import onnx_classes, saved_model_classes, tflite_classes
from danet_keras.export.tflite import tflite_interpreter
from danet_keras.models.loading import load_keras_model

FORMATS = ("keras", "saved_model", "tflite", "onnx")


def artefact_format(path):
    """`"keras"`, `"saved_model"`, `"tflite"` or `"onnx"`, from the path."""
    path = str(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            return "saved_model"
        raise ValueError(f"--model {path}: a directory without saved_model.pb is not a SavedModel.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"--model {path}: no such file or directory.")
    extension = os.path.splitext(path)[1].lower()
    formats = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}
    if extension not in formats:
        raise ValueError(
            f"--model {path}: expected a .keras file, a SavedModel directory, a .tflite or an "
            ".onnx file."
        )
    return formats[extension]


def outputs_from_logits(logits):
    """The runner outputs (`class_ids`, `probabilities`, `logits`) of NumPy logits."""
    logits = np.asarray(logits, np.float32)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return {
        "class_ids": logits.argmax(axis=-1).astype(np.int32),
        "probabilities": exp / exp.sum(axis=-1, keepdims=True),
        "logits": logits,
    }


def outputs_at_size(outputs, size):
    """Runner outputs resized to `size` = (H, W), as if the model had run at that size.

    The logits are interpolated (bilinear) and the rest derived from them; an
    artefact that returns only `class_ids` has them resized nearest-neighbour.
    """
    if tuple(outputs["class_ids"].shape[1:3]) == tuple(size):
        return outputs
    if "logits" in outputs:
        return outputs_from_logits(tf.image.resize(outputs["logits"], size))
    class_ids = tf.image.resize(outputs["class_ids"][..., None], size, method="nearest")
    return {"class_ids": class_ids.numpy()[..., 0]}


def resize_images(images, size, antialias=False):
    """uint8 images (B, H, W, 3) resized to `size` = (height, width), bilinear.

    Args:
        images: uint8 (B, H, W, 3).
        size: the new (height, width).
        antialias: low-pass filter first when shrinking (a photo brought down
            to a model's scale).

    Returns:
        uint8 (B, height, width, 3), rounded.
    """
    images = np.asarray(images)
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    resized = tf.image.resize(images.astype(np.float32), size, antialias=antialias).numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def _as_images(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images must be uint8 RGB (B, H, W, 3), got {images.dtype} {images.shape}."
        )
    return images


class _Runner:
    """What every runner knows besides running: its input size and its classes.

    Attributes:
        format: one of `FORMATS`.
        input_size: None (any size) or the static (height, width).
        num_classes: K.
        class_names, palette: what the artefact carries (None for one
            exported without them); `models.classes.model_classes(runner)`
            fills in the fallback.
    """

    format = None
    input_size = None
    num_classes = None
    class_names = None
    palette = None

    def _set_classes(self, classes):
        if classes is not None:
            self.class_names, self.palette = classes


class KerasRunner(_Runner):
    """Runs a Keras model (dict output with `"logits"`) on uint8 images.

    Args:
        model: the model, or the path of a `.keras` file.
    """

    format = "keras"

    def __init__(self, model):
        if not hasattr(model, "predict"):
            model = load_keras_model(model)
        self.model = model
        self.num_classes = int(model.output["logits"].shape[-1])
        self.class_names = getattr(model, "class_names", None)
        self.palette = getattr(model, "palette", None)

    def __call__(self, images):
        images = _as_images(images).astype(np.float32)
        # convert_to_numpy: a PyTorch output holds its autograd graph, which NumPy refuses.
        logits = keras.ops.convert_to_numpy(self.model(images, training=False)["logits"])
        return outputs_from_logits(logits)


class SavedModelRunner(_Runner):
    """Calls the `serving_default` signature of a SavedModel directory."""

    format = "saved_model"

    def __init__(self, path):
        loaded = tf.saved_model.load(str(path))
        self.signature = loaded.signatures["serving_default"]
        shape = self.signature.structured_input_signature[1]["images"].shape
        self.input_size = None if None in shape[1:3] else tuple(shape[1:3])
        self._set_classes(saved_model_classes(loaded))
        # A model exported with `outputs=("class_ids",)` tells K by its class names only.
        scores = [
            spec
            for key, spec in self.signature.structured_outputs.items()
            if key in ("probabilities", "logits")
        ]
        if scores:
            self.num_classes = int(scores[0].shape[-1])
        elif self.class_names is not None:
            self.num_classes = len(self.class_names)

    def __call__(self, images):
        outputs = self.signature(images=tf.constant(_as_images(images)))
        return {key: value.numpy() for key, value in outputs.items()}


class _FixedSizeRunner(_Runner):
    """Feeds images one by one at the artefact's static size, resizing if needed."""

    def _run_one(self, image):
        raise NotImplementedError

    def __call__(self, images):
        images = _as_images(images)
        results = []
        for image in images:
            size = image.shape[:2]
            pixels = image[None]
            if self.input_size is not None:
                pixels = resize_images(pixels, self.input_size)
            results.append(outputs_at_size(self._run_one(pixels), size))
        return {key: np.concatenate([r[key] for r in results]) for key in results[0]}


class TFLiteRunner(_FixedSizeRunner):
    """Runs a `.tflite` file's `serving_default` signature, one image at a time.

    Args:
        path: the `.tflite` file.
        runtime, use_xnnpack, num_threads: see `tflite.tflite_interpreter`.
    """

    format = "tflite"

    def __init__(self, path, runtime="litert", use_xnnpack=True, num_threads=None):
        self.interpreter = tflite_interpreter(path, runtime, use_xnnpack, num_threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        shape = self.runner.get_input_details()["images"]["shape"]
        self.input_size = (int(shape[1]), int(shape[2]))
        self.num_classes = int(self.runner.get_output_details()["probabilities"]["shape"][-1])
        self._set_classes(tflite_classes(path))

    def _run_one(self, image):
        return {key: np.array(value) for key, value in self.runner(images=image).items()}


class OnnxRunner(_FixedSizeRunner):
    """Runs an ONNX file with onnxruntime (CPU)."""

    format = "onnx"

    def __init__(self, path):
        import onnxruntime  # deferred: onnxruntime is optional (the `onnx` extra)

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape
        static = all(isinstance(s, int) for s in shape[1:3])
        self.input_size = (shape[1], shape[2]) if static else None
        outputs = self.session.get_outputs()
        self.output_names = [output.name for output in outputs]
        self.num_classes = int(next(o for o in outputs if o.name == "probabilities").shape[-1])
        self._set_classes(onnx_classes(self.session))

    def _run_one(self, image):
        return dict(zip(self.output_names, self.session.run(None, {"images": image})))


def load_runner(path, **options):
    """The runner for an artefact, chosen by `artefact_format(path)`.

    Args:
        path: a `.keras` file, a SavedModel directory, a `.tflite` or an
            `.onnx` file.
        **options: for `.tflite`: `runtime`, `use_xnnpack`, `num_threads`.

    Returns:
        A runner: `runner(images)` -> dict of NumPy outputs; `runner.format`,
        `runner.input_size` (None when any size is accepted),
        `runner.num_classes`, and `runner.class_names` / `runner.palette`
        (None when the artefact carries none).
    """
    runners = {
        "keras": KerasRunner,
        "saved_model": SavedModelRunner,
        "tflite": TFLiteRunner,
        "onnx": OnnxRunner,
    }
    return runners[artefact_format(path)](path, **options)
