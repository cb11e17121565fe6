"""TFLite / LiteRT export: float32, float16, dynamic-range and full-integer int8.

The model is first written as a SavedModel with a static input size
(`saved_model.build_export_archive`, batch 1, no image-bytes signature: image
decoding is no TFLite builtin) and converted from there, because
`TFLiteConverter.from_keras_model` is unreliable with Keras 3. The `.tflite`
file has one signature, `serving_default`: `images` uint8 [1, H, W, 3] ->
`class_ids` int32 [1, H, W], `probabilities` and `logits` float32
[1, H, W, K]. Its metadata holds the model's class names and colours
(`export.metadata`). Only TFLite builtin ops are allowed (no Select TF ops), so the
file runs in the plain LiteRT runtime.
"""

import collections
import os
import tempfile
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from danet_keras.data.classes import model_classes
from danet_keras.export.metadata import add_tflite_classes
from danet_keras.export.quantization import FLOAT_OPS_IN_INT8, convert_int8
from danet_keras.export.saved_model import IMAGES_KEY, SERVING_DEFAULT, build_export_archive
from danet_keras.inference.optimize import inference_model
from danet_keras.utils.backends import require_tensorflow_backend
from danet_keras.utils.native_log import filtered_native_stderr, native_info_hidden
from danet_keras.utils.output_paths import check_file_artefact, write_artefact_bytes

QUANTIZATIONS = ("float16", "dynamic", "int8")
RUNTIMES = ("litert", "tensorflow")
# TF 2.21's calibrator (run for int8) crashes the process with a segmentation
# fault on any graph with a while loop, so int8 refuses such graphs up front.
_LOOP_OPS = ("While", "StatelessWhile")


def _validate(quantization, representative_data, input_size):
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be None (float32) or one of {QUANTIZATIONS}, "
            f"got {quantization!r}."
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "int8 quantization needs `representative_data`: images from the training pipeline "
            "(an array, an iterable or a tf.data.Dataset of images, (images, labels) or "
            "{'images': ...}) to calibrate the activation ranges."
        )
    input_size = tuple(input_size)
    if len(input_size) != 2 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_size
    ):
        raise ValueError(f"`input_size` must be (height, width) positive ints, got {input_size!r}.")
    return input_size


def representative_images(data, input_size, num_images):
    """Yields `num_images` uint8 (1, H, W, 3) calibration images from `data`.

    Args:
        data: a uint8/float array of images (N, h, w, 3) or one image
            (h, w, 3); or an iterable / `tf.data.Dataset` yielding images,
            batches of images, `(images, labels)` tuples or dicts with
            `"images"` (what the training pipeline yields). Pixel values in
            [0, 255].
        input_size: (height, width) the images are resized to (bilinear)
            when they have another size.
        num_images: how many images to yield at most.

    Yields:
        uint8 arrays of shape (1, height, width, 3).
    """
    if isinstance(data, np.ndarray):
        data = [data]
    count = 0
    for element in data:
        if isinstance(element, dict):
            element = element[IMAGES_KEY]
        elif isinstance(element, (tuple, list)):
            element = element[0]
        batch = np.asarray(element)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(
                f"representative data must hold RGB images (h, w, 3) or batches (n, h, w, 3), "
                f"got an element of shape {batch.shape}."
            )
        for image in batch:
            if image.shape[:2] != tuple(input_size):
                image = tf.image.resize(image.astype(np.float32), input_size).numpy()
            yield np.clip(np.round(image), 0, 255).astype(np.uint8)[None]
            count += 1
            if count >= num_images:
                return
    if count == 0:
        raise ValueError("`representative_data` yielded no images.")


def saved_model_ops(saved_model_dir):
    """Names of all ops in a SavedModel's graph and its functions, with counts."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as file:
        saved_model.ParseFromString(file.read())
    ops = collections.Counter()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def _configure(converter, quantization, calibration_images):
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.representative_dataset = lambda: (
            {IMAGES_KEY: image} for image in calibration_images
        )
        # Every op int8 (the uint8 image input is cast in the graph; logits and
        # probabilities are dequantised at the end).
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def export_tflite(
    model,
    path,
    quantization=None,
    representative_data=None,
    input_size=(512, 512),
    num_calibration_images=100,
    optimize=True,
    overwrite=False,
):
    """Writes `model` as a `.tflite` file with a static input size.

    Args:
        model: the Keras segmentation model, e.g. `danet_keras.DANet`.
        path: output `.tflite` file.
        quantization: None (float32), `"float16"` (float16 weights),
            `"dynamic"` (int8 weights, float activations) or `"int8"` (full
            integer: int8 weights and activations, calibrated on
            `representative_data`).
        representative_data: calibration images for `"int8"`; see
            `representative_images` for the accepted forms. Use images from
            the training pipeline (without random augmentation).
        input_size: (height, width) of the static input.
        num_calibration_images: number of calibration images used.
        optimize: export `danet_keras.optimize_for_inference(model)` with
            direct convolutions (Winograd loses under XNNPACK and in int8);
            int8 keeps the attention's products and softmaxes in float32
            (`export.quantization`).
        overwrite: replace a `.tflite` file that danet-keras wrote at `path`
            earlier; any other existing file is refused
            (`danet_keras.utils.output_paths`).

    Returns:
        `path`, as a string.
    """
    require_tensorflow_backend("TFLite export")
    check_file_artefact(path, "tflite", overwrite)
    input_size = _validate(quantization, representative_data, input_size)
    calibration_images = None
    if quantization == "int8":
        calibration_images = list(
            representative_images(representative_data, input_size, num_calibration_images)
        )
    # sliced_convs: measured with TensorFlow's kernels, which a TFLite runtime does not run.
    model = inference_model(model, optimize, winograd=False, sliced_convs=None)
    with tempfile.TemporaryDirectory(prefix="danet_tflite_") as saved_model_dir:
        build_export_archive(
            model, batch_size=1, image_size=input_size, include_image_bytes=False
        ).write_out(saved_model_dir, verbose=False)
        if quantization == "int8":
            loops = sorted(op for op in saved_model_ops(saved_model_dir) if op in _LOOP_OPS)
            if loops:
                raise ValueError(
                    f"int8 calibration cannot run this graph: it contains {loops} (the position "
                    "attention's block loop), and TF 2.21's TFLite calibrator crashes with a "
                    "segmentation fault on while loops. Export float32, float16 or dynamic "
                    "instead, or a model whose position attention is unrolled at static shapes."
                )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, signature_keys=[SERVING_DEFAULT]
        )
        _configure(converter, quantization, calibration_images)
        float_ops = FLOAT_OPS_IN_INT8 if optimize else ()
        flatbuffer = (
            convert_int8(converter, float_ops) if quantization == "int8" else converter.convert()
        )
    write_artefact_bytes(
        path, "tflite", add_tflite_classes(flatbuffer, model_classes(model)), overwrite
    )
    return str(path)


def tflite_interpreter(path, runtime="litert", use_xnnpack=True, num_threads=None):
    """A TFLite interpreter for `path` with its tensors allocated.

    Args:
        path: `.tflite` file.
        runtime: `"litert"` (`ai_edge_litert`, preferred) or `"tensorflow"`
            (`tf.lite.Interpreter`, deprecated upstream).
        use_xnnpack: keep the default XNNPACK delegate; False runs the
            builtin reference kernels (`BUILTIN_WITHOUT_DEFAULT_DELEGATES`),
            the cross-check for delegate bugs.
        num_threads: CPU threads, None for the runtime's default.

    Returns:
        The interpreter.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"`runtime` must be one of {RUNTIMES}, got {runtime!r}.")
    module = None
    if runtime == "litert":
        try:  # deferred: ai_edge_litert may be missing (tf.lite takes over)
            from ai_edge_litert import interpreter as module
        except ImportError:
            # LiteRT is a base dependency, but an environment may lack it;
            # TensorFlow's own interpreter runs the same file.
            warnings.warn(
                "ai_edge_litert is not installed (pip install ai-edge-litert); "
                "running the model with tf.lite.Interpreter instead.",
                stacklevel=2,
            )
    if module is not None:
        resolver_types = module.OpResolverType
    else:
        module = tf.lite
        resolver_types = tf.lite.experimental.OpResolverType
    kwargs = {}
    if not use_xnnpack:
        kwargs["experimental_op_resolver_type"] = resolver_types.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" here.
    with filtered_native_stderr(native_info_hidden()):
        interpreter = module.Interpreter(model_path=str(path), num_threads=num_threads, **kwargs)
        interpreter.allocate_tensors()
    return interpreter


def tflite_ops(path):
    """Op names of a `.tflite` file (all subgraphs), with counts."""
    interpreter = tflite_interpreter(path, use_xnnpack=False)
    return collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
