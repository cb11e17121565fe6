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
            "--out",
            str(out),
            "--input-size",
            str(height),
            str(width),
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
    code = main(["export", "--model", keras_file, "--out", str(tmp_path / "x")] + arguments)
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "option", [["--format", "coreml"], ["--format", "tflite", "--quantization", "int4"]]
)
def test_export_refuses_unknown_names(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", "m.keras", "--out", str(tmp_path / "x")] + option)
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
