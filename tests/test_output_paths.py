"""Writers never replace what danet-keras did not write (`danet_keras.utils.output_paths`).

The rules on small files first, then every writer of the package, through the
API and the command line, pointed at a folder that holds another model and a
notes file: afterwards those are byte-for-byte intact, and the writer either
refused with one line or wrote beside them.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from danet_keras.cli.main import main
from danet_keras.utils.output_paths import (
    MARKER,
    OutputRefused,
    check_files,
    check_folder_artefact,
    file_artefact,
    folder_artefact,
    locked,
    own_folder,
    read_marker,
)


def user_folder(path):
    """A folder with another model (a TF Serving version) and notes, as a user keeps them."""
    (path / "other_model" / "1").mkdir(parents=True)
    (path / "other_model" / "1" / "weights.bin").write_bytes(os.urandom(64))
    (path / "notes.txt").write_text("my notes\n")
    return path


def snapshot(path):
    """{relative path: bytes} of every file under `path`, without danet-keras' own record."""
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            if name != MARKER:
                with open(full, "rb") as f:
                    files[os.path.relpath(full, path)] = f.read()
    return files


def write_folder(path, kind="saved_model", overwrite=False, content=b"model"):
    with folder_artefact(path, kind, overwrite) as staging:
        with open(os.path.join(staging, "saved_model.pb"), "wb") as f:
            f.write(content)


def write_file(path, kind="tflite", overwrite=False, content=b"flatbuffer"):
    with file_artefact(path, kind, overwrite) as temporary:
        with open(temporary, "wb") as f:
            f.write(content)


def one_line(error):
    message = str(error.value)
    assert "\n" not in message
    return message


# --- folder artefacts ---------------------------------------------------------------------------


def test_a_folder_artefact_is_written_into_a_new_or_empty_folder_with_its_marker(tmp_path):
    write_folder(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    write_folder(tmp_path / "empty")
    for name in ("new", "empty"):
        assert read_marker(tmp_path / name) == {
            "format": 1,
            "artefact": "saved_model",
            "contents": ["saved_model.pb"],
        }


def test_a_folder_holding_other_files_is_refused_with_a_version_folder_hint(tmp_path):
    models = user_folder(tmp_path / "models")
    before = snapshot(models)
    with pytest.raises(OutputRefused) as error:
        write_folder(models, overwrite=True)
    message = one_line(error)
    assert str(models) in message and "did not write" in message
    assert os.path.join(str(models), "1") in message  # TF Serving's numbered version folder
    assert snapshot(models) == before
    # Beside the user's files, a new version folder is fine.
    write_folder(models / "2")
    assert snapshot(models) == {**before, os.path.join("2", "saved_model.pb"): b"model"}


def test_an_own_folder_artefact_is_replaced_only_with_overwrite(tmp_path):
    path = tmp_path / "sm"
    write_folder(path, content=b"first")
    with pytest.raises(OutputRefused, match="--overwrite") as error:
        write_folder(path, content=b"second")
    one_line(error)
    assert (path / "saved_model.pb").read_bytes() == b"first"
    write_folder(path, overwrite=True, content=b"second")
    assert (path / "saved_model.pb").read_bytes() == b"second"
    assert sorted(os.listdir(tmp_path)) == ["sm"]  # no temporary folder left


def test_an_own_folder_with_a_file_added_or_of_another_kind_is_refused_even_with_overwrite(
    tmp_path,
):
    path = tmp_path / "sm"
    write_folder(path)
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / "mine.txt").write_text("the user's")
    with pytest.raises(OutputRefused, match="did not write"):
        write_folder(path, overwrite=True)
    assert (path / "assets" / "mine.txt").read_text() == "the user's"
    write_folder(tmp_path / "preset", kind="preset")
    with pytest.raises(OutputRefused, match="did not write"):
        write_folder(tmp_path / "preset", kind="saved_model", overwrite=True)


def test_a_file_where_a_folder_artefact_goes_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputRefused):
        check_folder_artefact(tmp_path / "file", "saved_model", overwrite=True)


# --- file artefacts -----------------------------------------------------------------------------


def test_a_file_artefact_is_recorded_and_replaced_only_with_overwrite(tmp_path):
    path = tmp_path / "danet.tflite"
    write_file(path, content=b"one")
    record = read_marker(tmp_path)["files"]["danet.tflite"]
    assert record["kind"] == "tflite" and record["size"] == 3
    with pytest.raises(OutputRefused, match="--overwrite"):
        write_file(path, content=b"two")
    write_file(path, overwrite=True, content=b"two")
    assert path.read_bytes() == b"two"


def test_a_file_the_user_wrote_or_changed_is_never_replaced(tmp_path):
    mine = tmp_path / "mine.tflite"
    mine.write_bytes(b"the user's")
    with pytest.raises(OutputRefused, match="did not write") as error:
        write_file(mine, overwrite=True)
    assert str(mine) in one_line(error)
    assert mine.read_bytes() == b"the user's"
    # Written by danet-keras, then changed by the user: the user's now.
    ours = tmp_path / "ours.tflite"
    write_file(ours)
    ours.write_bytes(b"edited")
    with pytest.raises(OutputRefused, match="did not write"):
        write_file(ours, overwrite=True)
    # A kind that differs: refused too.
    write_file(tmp_path / "model.onnx", kind="onnx")
    with pytest.raises(OutputRefused, match="did not write"):
        write_file(tmp_path / "model.onnx", kind="tflite", overwrite=True)
    # A folder where a file goes, and a link.
    (tmp_path / "folder.tflite").mkdir()
    os.symlink(mine, tmp_path / "link.tflite")
    for path in ("folder.tflite", "link.tflite"):
        with pytest.raises(OutputRefused):
            write_file(tmp_path / path, overwrite=True)
    assert mine.read_bytes() == b"the user's"


def test_two_inputs_mapped_to_one_output_are_refused_before_anything_is_written(tmp_path):
    outputs = {tmp_path / "a_labels.png": "a.png", tmp_path / "b_labels.png": "b.png"}
    check_files(outputs, "prediction")
    with pytest.raises(OutputRefused, match="a.png and a.jpg would both be written"):
        check_files(
            {str(tmp_path / "a_labels.png"): "a.png", str(tmp_path) + "/./a_labels.png": "a.jpg"},
            "prediction",
        )


# --- protected paths ----------------------------------------------------------------------------


def test_the_current_folder_its_parents_and_the_inputs_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "image.png").write_bytes(b"png")
    monkeypatch.chdir(work)
    for path in (".", str(work), str(tmp_path), "..", ""):
        with pytest.raises(OutputRefused, match="current folder") as error:
            check_folder_artefact(path or ".", "saved_model", overwrite=True)
        one_line(error)
    for path, inputs in (("data", ["data/image.png"]), ("data/image.png", ["data/image.png"])):
        with pytest.raises(OutputRefused, match="input"):
            check_folder_artefact(path, "saved_model", inputs=inputs)
    check_folder_artefact("out", "saved_model", inputs=["data/image.png"])


# --- folders a command owns ---------------------------------------------------------------------


def test_an_owned_folder_is_claimed_when_new_or_empty_and_taken_again_by_its_owner(tmp_path):
    run = own_folder(tmp_path / "run", "training_run")
    assert read_marker(run) == {"format": 1, "owner": "training_run"}
    (tmp_path / "run" / "best.keras").write_bytes(b"checkpoint")
    own_folder(tmp_path / "run", "training_run")  # resuming
    with pytest.raises(OutputRefused, match="a demo"):
        own_folder(tmp_path / "run", "demo", purpose="a demo")
    mine = user_folder(tmp_path / "mine")
    before = snapshot(mine)
    with pytest.raises(OutputRefused, match="did not write") as error:
        own_folder(mine, "training_run")
    one_line(error)
    assert snapshot(mine) == before and not (mine / MARKER).exists()


def test_the_marker_is_plain_json(tmp_path):
    write_file(tmp_path / "a.tflite")
    with open(tmp_path / MARKER) as f:
        assert set(json.load(f)["files"]) == {"a.tflite"}


# --- every writer, through the API --------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    from .export.conftest import build_small_danet

    return build_small_danet()


@pytest.fixture(scope="module")
def keras_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "danet.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from danet_keras.export import synthetic_images

    path = tmp_path_factory.mktemp("photo") / "a.png"
    Image.fromarray(synthetic_images(1, (64, 96), seed=0)[0]).save(path)
    return path


def refused_or_beside(folder, before, write):
    """Runs `write`; it must refuse with one line or leave `before` intact beside its files."""
    try:
        write()
    except OutputRefused as error:
        assert "\n" not in str(error)
    after = snapshot(folder)
    assert {name: after.get(name) for name in before} == before


def test_every_writer_keeps_a_users_folder_intact(model, photo, tmp_path):
    from danet_keras import export
    from danet_keras.apps.demo import run_demo
    from danet_keras.apps.evaluation import evaluate
    from danet_keras.apps.predict import predict_files
    from danet_keras.convert.converter import save_atomically
    from danet_keras.data import make_demo_city
    from danet_keras.training.trainer import train

    folder = user_folder(tmp_path / "models")
    (folder / "mine.weights.h5").write_bytes(b"the user's weights")
    before = snapshot(folder)
    notes = folder / "notes.txt"
    # Writers of a folder: all refuse it.
    for write in (
        lambda: export.export_saved_model(model, folder, overwrite=True),
        lambda: model.save_to_preset(folder, overwrite=True),
        lambda: make_demo_city(folder, num_train=1, num_val=1, size=(16, 16)),
        lambda: run_demo(output_dir=str(folder), quick=True),
        lambda: train(dict(dataset="demo_city", data_dir="x", output_dir=str(folder))),
    ):
        with pytest.raises(OutputRefused) as error:
            write()
        assert str(folder) in one_line(error)
    # Writers of files: the folder itself and the user's file are refused.
    for target in (folder, notes, folder / "other_model", folder / "mine.weights.h5"):
        for write in (
            lambda: export.export_tflite(model, target, input_size=(64, 96), overwrite=True),
            lambda: export.export_onnx(model, target, overwrite=True),
            lambda: save_atomically(model, target, overwrite=True),
        ):
            with pytest.raises(ValueError):
                write()
    # ... and they write beside them.
    images = np.stack([np.asarray(Image.open(photo))] * 2).astype("float32")
    labels = np.zeros((2, 64, 96), "int32")
    for write in (
        lambda: save_atomically(model, folder / "converted.weights.h5"),
        lambda: predict_files(model, photo, folder, progress=False),
        lambda: evaluate(model, [(images, labels)], output_dir=folder, verbose=False),
    ):
        refused_or_beside(folder, before, write)
    assert {"converted.weights.h5", "a.png_labels.png", "metrics.json"} <= set(os.listdir(folder))


def test_predict_keeps_the_extension_so_two_inputs_never_share_an_output(model, tmp_path):
    from danet_keras.apps.predict import predict_files
    from danet_keras.export import synthetic_images

    photos = tmp_path / "photos"
    photos.mkdir()
    image = Image.fromarray(synthetic_images(1, (64, 96), seed=0)[0])
    image.save(photos / "a.png")
    image.save(photos / "a.jpg", quality=95)
    written = predict_files(model, photos, tmp_path / "out", progress=False)
    assert sorted(os.path.basename(path) for path in written) == [
        "a.jpg_labels.png",
        "a.png_labels.png",
    ]
    # Again: refused before anything is written, unless told to overwrite.
    with pytest.raises(OutputRefused, match="--overwrite"):
        predict_files(model, photos, tmp_path / "out", progress=False)
    predict_files(model, photos, tmp_path / "out", progress=False, overwrite=True)
    # The output folder may not hold the inputs.
    with pytest.raises(OutputRefused, match="input"):
        predict_files(model, photos / "a.png", photos, progress=False)
    assert sorted(os.listdir(photos)) == ["a.jpg", "a.png"]


# --- every writer, through the command line -----------------------------------------------------


def cli_refuses(arguments, capsys):
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def test_every_command_refuses_a_users_folder_and_the_current_one(
    keras_file, photo, tmp_path, capsys, monkeypatch
):
    folder = user_folder(tmp_path / "models")
    before = snapshot(folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    model = ["--model", keras_file]
    for out in (str(folder), "."):
        commands = [
            ["export", *model, "--format", "saved_model", "--output", out, "--overwrite"],
            ["export", *model, "--format", "tflite", "--output", out, "--overwrite"],
            ["export", *model, "--format", "onnx", "--output", out, "--overwrite"],
            ["predict", *model, str(photo), "--output", out] if out == "." else None,
            ["evaluate", *model, "--dataset", "demo_city", "--data-dir", "x", "--output", out]
            if out == "."
            else None,
            ["train", "--dataset", "demo_city", "--data-dir", "x", "--output", out],
            ["demo", "--quick", "--output", out],
            ["make-demo-data", out, "--num-train", "1", "--num-val", "1"],
            ["convert", keras_file, "--preset-dir", out, "--overwrite"],
        ]
        for command in filter(None, commands):
            error = cli_refuses(command, capsys)
            assert "refusing to write" in error, (command, error)
    assert snapshot(folder) == before
    assert os.listdir(work) == []
    # A file the user has, at a file output.
    mine = folder / "mine.tflite"
    mine.write_bytes(b"the user's")
    error = cli_refuses(
        ["export", *model, "--format", "tflite", "--output", str(mine), "--overwrite"], capsys
    )
    assert "did not write" in error and mine.read_bytes() == b"the user's"


@pytest.mark.slow
def test_the_same_artefact_is_replaced_only_with_the_overwrite_flag(
    keras_file, photo, tmp_path, capsys
):
    out = tmp_path / "serving" / "danet" / "1"
    export = ["export", "--model", keras_file, "--format", "saved_model", "--output", str(out)]
    export += ["--num-parity-images", "0"]
    assert main(export) == 0
    first = (out / "saved_model.pb").stat().st_mtime_ns
    error = cli_refuses(export, capsys)
    assert "--overwrite" in error and (out / "saved_model.pb").stat().st_mtime_ns == first
    assert main(export + ["--overwrite"]) == 0
    assert (out / "saved_model.pb").stat().st_mtime_ns != first
    # predict likewise.
    labels = tmp_path / "labels"
    predict = ["predict", "--model", keras_file, str(photo), "--output", str(labels)]
    assert main(predict) == 0
    assert "--overwrite" in cli_refuses(predict, capsys)
    assert main(predict + ["--overwrite"]) == 0


def test_a_folder_lock_nests_in_one_process_and_excludes_others(tmp_path):
    try_lock = (
        "import fcntl, os, sys\n"
        "fcntl.flock(os.open(sys.argv[1], os.O_RDONLY), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    )
    other_process = [sys.executable, "-c", try_lock, str(tmp_path)]
    with locked(tmp_path):
        with locked(tmp_path):  # shares the hold instead of waiting for itself
            pass
        assert subprocess.run(other_process, capture_output=True).returncode != 0
    assert subprocess.run(other_process, capture_output=True).returncode == 0
