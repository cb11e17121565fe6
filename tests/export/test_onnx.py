import pytest

from danet_keras.export import check_parity
from danet_keras.export.runners import OnnxRunner

from ..numerics import KERNEL_ORDER_RTOL, MIN_CLASS_AGREEMENT
from .conftest import export_onnx_in_a_fresh_process

pytest.importorskip("tf2onnx", reason="the `onnx` extra is not installed")
pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed")


@pytest.fixture(scope="module")
def onnx_path(small_danet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    small_danet.save(folder / "danet.keras")
    return export_onnx_in_a_fresh_process(folder / "danet.keras", folder / "danet.onnx")


@pytest.mark.slow
def test_onnxruntime_parity_at_two_sizes(small_danet, onnx_path, test_images):
    assert OnnxRunner(onnx_path).input_size is None  # dynamic height and width
    for images in test_images:
        report = check_parity(small_danet, onnx_path, images)
        # onnxruntime's float32 kernels: see tests/numerics.py.
        assert report.relative_logit_diff <= KERNEL_ORDER_RTOL, report
        assert report.class_agreement >= MIN_CLASS_AGREEMENT, report


@pytest.mark.slow
def test_onnx_graph_keeps_the_chunked_attention_loop(onnx_path):
    import onnx

    graph = onnx.load(onnx_path).graph
    assert any(node.op_type == "Loop" for node in graph.node)
