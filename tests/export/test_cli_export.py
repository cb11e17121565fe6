import re

import pytest

from danet_keras.cli.main import main
from danet_keras.export import tflite_ops

from ..numerics import MIN_CLASS_AGREEMENT
from .conftest import IMAGE_SIZE


@pytest.fixture(scope="module")
def keras_file(small_danet, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "danet.keras"
    small_danet.save(path)
    return str(path)


@pytest.mark.slow
def test_export_tflite_prints_parity(keras_file, tmp_path, capsys):
    out = tmp_path / "danet.tflite"
    height, width = IMAGE_SIZE
    code = main(
        [
            "export",
            "--model",
            keras_file,
            "--format",
            "tflite",
            "--output",
            str(out),
            "--input-size",
            f"{height}x{width}",
            "--num-parity-images",
            "2",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    match = re.search(r"class_ids agreement ([\d.]+)% of (\d+) pixels", printed)
    # TFLite's float32 kernels against Keras: near-ties may flip (tests/numerics.py).
    assert (
        match
        and float(match.group(1)) >= 100 * MIN_CLASS_AGREEMENT
        and int(match.group(2)) == 2 * height * width
    )
    assert re.search(r"max \|logit diff\| [\d.e+-]+ \(", printed)
    assert "CONV_2D" in tflite_ops(str(out))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--format", "tflite", "--quantization", "int8"], "--representative-data DIR"),
        (["--format", "saved_model", "--quantization", "float16"], "--format tflite only"),
    ],
)
def test_export_refuses_bad_arguments(keras_file, tmp_path, capsys, arguments, message):
    code = main(["export", "--model", keras_file, "--output", str(tmp_path / "x")] + arguments)
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "option", [["--format", "coreml"], ["--format", "tflite", "--quantization", "int4"]]
)
def test_export_refuses_unknown_names(tmp_path, capsys, option):
    code = main(["export", "--model", "m.keras", "--output", str(tmp_path / "x")] + option)
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_export_outputs_class_ids_only_in_both_signatures(keras_file, tmp_path, capsys):
    import tensorflow as tf

    out = tmp_path / "serving" / "danet" / "1"
    arguments = ["export", "--model", keras_file, "--format", "saved_model", "--output", str(out)]
    assert main(arguments + ["--outputs", "class_ids", "--num-parity-images", "1"]) == 0
    printed = capsys.readouterr().out
    # The parity report compares what the artefact returns: the class ids.
    assert "class_ids agreement" in printed and "logit diff" not in printed
    loaded = tf.saved_model.load(str(out))
    for name in ("serving_default", "serve_image_bytes"):
        assert list(loaded.signatures[name].structured_outputs) == ["class_ids"], name


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--format", "saved_model", "--outputs", "class_ids,scores"], "`outputs` takes one or"),
        (["--format", "tflite", "--outputs", "class_ids"], "--format saved_model only"),
    ],
)
def test_export_refuses_bad_outputs(tmp_path, capsys, arguments, message):
    # Refused before the model file (which does not exist) is read.
    assert main(["export", "--model", "m.keras", "-o", str(tmp_path / "x")] + arguments) == 2
    assert message in capsys.readouterr().err


def _conv_ops(saved_model_dir):
    import tensorflow as tf

    graph = tf.saved_model.load(saved_model_dir).signatures["serving_default"].graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return sum(node.op == "Conv2D" for node in nodes)


def test_export_sliced_convs_auto_follows_the_measurement_and_off_turns_it_off(
    keras_file, tmp_path, monkeypatch, capsys
):
    from danet_keras.inference import optimize

    # As if this machine had measured 2 filter slices faster for every convolution asked about.
    monkeypatch.setattr(optimize, "convolution_cut", lambda *shape: (2, 1))
    counts = {}
    for choice in ("auto", "off"):
        out = str(tmp_path / choice)
        arguments = ["export", "--model", keras_file, "--format", "saved_model", "--output", out]
        assert main(arguments + ["--sliced-convs", choice, "--num-parity-images", "0"]) == 0
        counts[choice] = _conv_ops(out)
    assert counts["auto"] > counts["off"] > 0
