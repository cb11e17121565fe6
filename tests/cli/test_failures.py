"""Every subcommand fails cleanly: one line, exit code 2, no traceback, no partial output."""

import os

import pytest
from PIL import Image

from danet_keras.cli.main import main
from danet_keras.data import make_demo_city


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    blocker = root / "a_file"
    blocker.write_text("a file where a directory is needed")
    not_a_model = root / "notes.keras"
    not_a_model.write_text("not a zip archive")
    make_demo_city(str(root / "city"), num_train=1, num_val=1, size=(32, 32))
    return {
        "city": str(root / "city"),
        "missing": str(root / "missing"),
        # An output directory that cannot be made, even by root: its parent is a file.
        "unwritable": str(blocker / "out"),
        "not_a_model": str(not_a_model),
        "root": root,
    }


CASES = {
    # nonexistent paths
    "train_missing_data": ["train", "--dataset", "cityscapes", "--data-dir", "{missing}",
                           "--output", "{root}/train_out"],
    "evaluate_missing_model": ["evaluate", "--model", "{missing}.keras", "--dataset", "demo_city",
                               "--data-dir", "{missing}"],
    "export_missing_model": ["export", "--model", "{missing}.keras", "--format", "saved_model",
                             "--output", "{root}/export_out"],
    "predict_missing_model": ["predict", "--model", "{missing}.keras", "{root}", "--output",
                              "{root}/predict_out"],
    "convert_missing_checkpoint": ["convert", "{missing}.pth", "-o", "{root}/converted.keras"],
    "export_not_a_model": ["export", "--model", "{not_a_model}", "--format", "onnx", "--output",
                           "{root}/export_out2"],
    # output directories that cannot be written
    "make_demo_data_unwritable": ["make-demo-data", "{unwritable}", "--num-train", "1",
                                  "--num-val", "1", "--size", "32x32"],
    "demo_unwritable": ["demo", "--quick", "--output", "{unwritable}"],
    "train_unwritable": ["train", "--dataset", "demo_city", "--data-dir", "{city}",
                         "--output", "{unwritable}"],
    "convert_unwritable": ["convert", "{not_a_model}", "-o", "{unwritable}/x.keras"],
    "benchmark_bad_size": ["benchmark", "--backbone", "resnet18", "--size", "big"],
    # contradictory flags
    "evaluate_stride_without_crop": ["evaluate", "--model", "{not_a_model}", "--dataset",
                                     "demo_city", "--data-dir", "{root}", "--stride", "8"],
    "export_quantized_saved_model": ["export", "--model", "{not_a_model}", "--format",
                                     "saved_model", "--quantization", "float16", "--output",
                                     "{root}/x"],
    "export_int8_without_data": ["export", "--model", "{not_a_model}", "--format", "tflite",
                                 "--quantization", "int8", "--output", "{root}/x.tflite"],
    "export_size_limit_for_tflite": ["export", "--model", "{not_a_model}", "--format", "tflite",
                                     "--max-image-size", "64x64", "--output", "{root}/y.tflite"],
    "convert_no_destination": ["convert", "{not_a_model}"],
    "train_backup_freq_without_backup": ["train", "--dataset", "demo_city", "--data-dir",
                                         "{city}", "--no-backup", "--backup-freq", "10"],
    "evaluate_two_scale_lists": ["evaluate", "--model", "{not_a_model}", "--dataset", "demo_city",
                                 "--data-dir", "{city}", "--multi-scale", "--scales", "1.0"],
}  # fmt: skip


def snapshot(root):
    return sorted(
        os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root)
        for n in dirs + files
    )  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_invocations_fail_in_one_line_without_output(case, paths, capsys):
    arguments = [part.format(**paths) for part in CASES[case]]
    before = snapshot(paths["root"])
    code = main(arguments)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"danet-keras {arguments[0]}: error: "), err
    assert "Traceback" not in err
    assert snapshot(paths["root"]) == before  # nothing written, not even a partial file


def test_debug_shows_the_traceback(paths):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "export", "--model", paths["missing"] + ".keras", "--format", "onnx",
              "--output", "x"])  # fmt: skip


def test_a_model_file_with_a_lambda_layer_is_refused(tmp_path, capsys):
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, {"logits": keras.layers.Lambda(lambda x: x * 2.0)(inputs)})
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(photo)
    code = main(["predict", "--model", path, str(photo), "--output", str(tmp_path / "out")])
    assert code == 2
    assert "refused: it holds a Lambda layer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_process_exits_2_with_one_line(paths):
    # `main`'s return value is the console script's exit status (`sys.exit(main())`). Without
    # TF_CPP_MIN_LOG_LEVEL (which conftest sets), as a user runs it: TensorFlow's start-up
    # lines are hidden (see danet_keras.utils.native_log), so stderr holds only the error.
    import subprocess
    import sys

    arguments = [part.format(**paths) for part in CASES["convert_missing_checkpoint"]]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "danet_keras.cli.main", *arguments],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("danet-keras convert: error: "), result.stderr
