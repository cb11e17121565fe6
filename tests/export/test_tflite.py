import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.export import check_parity, export_tflite, tflite_ops
from danet_keras.export.runners import TFLiteRunner
from danet_keras.export.tflite import representative_images

from ..numerics import KERNEL_ORDER_RTOL, MIN_CLASS_AGREEMENT
from .conftest import IMAGE_SIZE

# float16 weights carry 2**-11 = 4.9e-4 relative rounding each: logits move by
# ~1e-3 of their range, enough to flip the near-ties of an untrained model's
# flat logits (measured 99.95-99.96%), never a decided pixel.
FLOAT16_MIN_CLASS_AGREEMENT = 0.995

# Every op the exported DANet may use; anything else (Flex*, CUSTOM) would
# need Select TF ops or a custom op resolver.
BUILTIN_OPS = {
    "ADD",
    "ARG_MAX",
    "BATCH_MATMUL",
    "CAST",
    "CONCATENATION",
    "CONV_2D",
    "DEQUANTIZE",
    "FULLY_CONNECTED",
    "GATHER",
    "MAX_POOL_2D",
    "MUL",
    "PAD",
    "QUANTIZE",
    "REDUCE_MAX",
    "RESHAPE",
    "SOFTMAX",
    "STRIDED_SLICE",
    "SUB",
    "WHILE",
    "TRANSPOSE",
    "SLICE",
}


@pytest.fixture(scope="module")
def float32_tflite(small_danet, tmp_path_factory):
    return export_tflite(
        small_danet, str(tmp_path_factory.mktemp("tflite") / "fp32.tflite"), input_size=IMAGE_SIZE
    )


def test_float32_builtin_ops_only_and_chunked_attention(float32_tflite):
    ops = tflite_ops(float32_tflite)
    assert set(ops) <= BUILTIN_OPS, set(ops) - BUILTIN_OPS
    # The 3 query blocks, unrolled at the static export size (2 BATCH_MATMUL
    # per block plus 2 of the channel attention): no WHILE, which the int8
    # calibrator and GPU delegates cannot take.
    assert "WHILE" not in ops
    assert ops["BATCH_MATMUL"] >= 2 * 3 + 2


@pytest.mark.parametrize(
    "runner_options",
    [{}, {"use_xnnpack": False}, {"runtime": "tensorflow"}],
    ids=["litert_xnnpack", "litert_builtin_kernels", "tf_lite_interpreter"],
)
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_float32_parity(small_danet, float32_tflite, test_images, runner_options):
    report = check_parity(small_danet, float32_tflite, test_images[0], **runner_options)
    # Another runtime's float32 kernels: see tests/numerics.py.
    assert report.relative_logit_diff <= KERNEL_ORDER_RTOL, report
    assert report.class_agreement >= MIN_CLASS_AGREEMENT, report


def test_runner_resizes_other_image_sizes(float32_tflite, test_images):
    outputs = TFLiteRunner(float32_tflite)(test_images[1])
    assert outputs["class_ids"].shape == test_images[1].shape[:3]
    assert outputs["logits"].shape == test_images[1].shape[:3] + (5,)


@pytest.mark.slow
def test_float16_parity(small_danet, test_images, tmp_path):
    path = export_tflite(
        small_danet, str(tmp_path / "fp16.tflite"), quantization="float16", input_size=IMAGE_SIZE
    )
    assert set(tflite_ops(path)) <= BUILTIN_OPS
    for use_xnnpack in (True, False):
        report = check_parity(small_danet, path, test_images[0], use_xnnpack=use_xnnpack)
        assert report.class_agreement >= FLOAT16_MIN_CLASS_AGREEMENT, report


@pytest.mark.slow
def test_int8_parity(small_danet, test_images, tmp_path):
    calibration = tf.data.Dataset.from_tensor_slices(
        (test_images[0].repeat(4, axis=0), np.zeros((8,) + IMAGE_SIZE, np.uint8))
    ).batch(2)
    path = export_tflite(
        small_danet,
        str(tmp_path / "int8.tflite"),
        quantization="int8",
        representative_data=calibration,
        input_size=IMAGE_SIZE,
    )
    assert set(tflite_ops(path)) <= BUILTIN_OPS
    for use_xnnpack in (True, False):
        report = check_parity(small_danet, path, test_images[0], use_xnnpack=use_xnnpack)
        # An untrained model's near-tied logits flip easily; the acceptance
        # figure (>= 97 %) is for the trained demo model (benchmarks/export_sizes.py).
        assert report.class_agreement >= 0.8, report


def test_int8_refuses_graphs_with_while_loops(tmp_path):
    inputs = keras.Input((4, 4, 3), batch_size=1)
    outputs = keras.layers.Lambda(
        lambda x: keras.ops.fori_loop(
            0, keras.ops.cast(keras.ops.max(x), "int32") % 3, lambda i, y: y + 1.0, x
        )
    )(inputs)
    model = keras.Model(inputs, {"logits": outputs})
    with pytest.raises(ValueError, match="while loops"):
        export_tflite(
            model, str(tmp_path / "x.tflite"), "int8", np.zeros((2, 4, 4, 3), np.uint8), (4, 4)
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantization": "int4"}, "quantization"),
        ({"quantization": "int8"}, "representative_data"),
        ({"input_size": (64,)}, "input_size"),
    ],
)
def test_invalid_arguments(small_danet, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_tflite(small_danet, str(tmp_path / "x.tflite"), **kwargs)


def test_representative_images_accepts_pipeline_forms():
    images = np.random.default_rng(0).integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    forms = [
        images,
        [images[0], images[1]],
        tf.data.Dataset.from_tensor_slices((images, np.zeros((3, 20, 30), np.uint8))).batch(2),
        tf.data.Dataset.from_tensor_slices({"images": images}),
    ]
    for data in forms:
        batches = list(representative_images(data, (20, 30), num_images=2))
        assert len(batches) == 2
        np.testing.assert_array_equal(np.concatenate(batches), images[:2])
    resized = list(representative_images(images, (10, 15), num_images=5))
    assert len(resized) == 3 and resized[0].shape == (1, 10, 15, 3) and resized[0].dtype == np.uint8
    with pytest.raises(ValueError, match="RGB"):
        list(representative_images(np.zeros((2, 5, 5)), (5, 5), 1))


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_without_litert_the_tensorflow_interpreter_runs_the_file(float32_tflite, monkeypatch):
    # `pip install danet-keras` without the `tflite` extra: the demo's parity
    # check must still run.
    import sys

    from danet_keras.export.tflite import tflite_interpreter

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    with pytest.warns(UserWarning, match="ai_edge_litert is not installed"):
        interpreter = tflite_interpreter(float32_tflite)
    assert type(interpreter).__module__.startswith("tensorflow")
