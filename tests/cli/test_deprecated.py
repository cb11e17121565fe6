"""The previous release's spellings still work, each with one line saying what to write."""

import io

import pytest

from danet_keras.cli.deprecated import upgrade_arguments
from danet_keras.cli.main import build_parser

CASES = [
    # (old command line, today's, the number of old spellings in it)
    (["predict", "--model", "m.keras", "a.jpg", "--out", "o"],
     ["predict", "--model", "m.keras", "a.jpg", "--output", "o"], 1),
    (["predict", "--model", "m.keras", "a.jpg", "--out=o"],
     ["predict", "--model", "m.keras", "a.jpg", "--output=o"], 1),
    (["predict", "--model", "m", "a.jpg", "-o", "o", "--sliding-window", "64", "32"],
     ["predict", "--model", "m", "a.jpg", "-o", "o", "--crop-size", "64", "--stride", "32"], 1),
    (["predict", "--model", "m", "--sliding-window", "64", "a.jpg", "-o", "o"],
     ["predict", "--model", "m", "--crop-size", "64", "a.jpg", "-o", "o"], 1),
    (["export", "--model", "m", "--format", "tflite", "--out", "x", "--input-size", "64", "96"],
     ["export", "--model", "m", "--format", "tflite", "--output", "x", "--input-size", "64x96"], 2),
    (["export", "--model", "m", "--format", "onnx", "-o", "x", "--max-image-size", "0", "0"],
     ["export", "--model", "m", "--format", "onnx", "-o", "x", "--max-image-size", "none"], 1),
    (["evaluate", "--model", "m", "--dataset", "cityscapes", "--data-dir", "d",
      "--crop-size", "512", "1024", "--stride", "256", "--output-dir", "e"],
     ["evaluate", "--model", "m", "--dataset", "cityscapes", "--data-dir", "d",
      "--crop-size", "512x1024", "--stride", "256", "--output", "e"], 2),
    (["convert", "c.pth", "-o", "x.keras", "--align-corners", "false", "--aux-head", "true",
      "--verify-size", "97", "129"],
     ["convert", "c.pth", "-o", "x.keras", "--no-align-corners", "--aux-head",
      "--verify-size", "97x129"], 3),
    (["convert", "c.pth", "-o", "x.keras", "--align-corners=true"],
     ["convert", "c.pth", "-o", "x.keras", "--align-corners"], 1),
    (["benchmark", "--mixed-precision", "mixed_bfloat16"],
     ["benchmark", "--dtype-policy", "mixed_bfloat16"], 1),
    (["--debug", "demo", "--quick", "--output-dir", "d"],
     ["--debug", "demo", "--quick", "--output", "d"], 1),
    (["train", "--dataset", "demo_city", "--data-dir", "d", "--output-dir", "r"],
     ["train", "--dataset", "demo_city", "--data-dir", "d", "--output", "r"], 1),
]  # fmt: skip


@pytest.mark.parametrize("old, new, count", CASES)
def test_old_spellings_parse_as_todays_with_one_line_each(old, new, count):
    stream = io.StringIO()
    upgraded = upgrade_arguments(old, stream)
    assert upgraded == new
    assert vars(build_parser().parse_args(upgraded)) == vars(build_parser().parse_args(new))
    lines = stream.getvalue().splitlines()
    command = next(token for token in new if not token.startswith("-"))
    assert len(lines) == count
    for line in lines:
        assert line.startswith(f"danet-keras {command}: `")
        assert "is deprecated and goes in the next release; write `" in line


@pytest.mark.parametrize(
    "arguments",
    [
        ["predict", "--model", "m.keras", "a.jpg", "--output", "o", "--crop-size", "64"],
        ["export", "--model", "m", "--format", "tflite", "-o", "x", "--input-size", "64x96"],
        # Today's spellings that look like old ones in another command are left alone.
        ["convert", "c.pth", "-o", "x.keras", "--align-corners"],
        ["train", "--dataset", "demo_city", "--data-dir", "d", "--crop-size", "64"],
        ["predict", "--model", "m", "--", "--out"],
        ["--help"],
        [],
    ],
)
def test_todays_spellings_are_left_alone(arguments):
    stream = io.StringIO()
    assert upgrade_arguments(arguments, stream) == arguments
    assert stream.getvalue() == ""
