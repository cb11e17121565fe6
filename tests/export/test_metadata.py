"""Class names and colours survive every artefact, and old artefacts still work."""

import json
import logging
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import danet_keras
from danet_keras.export import export_saved_model, export_tflite
from danet_keras.export.runners import load_runner

from .conftest import build_small_danet, export_onnx_in_a_fresh_process

NAMES = ("road", "sky", "car, parked", "person")
PALETTE = ((128, 64, 128), (70, 130, 180), (0, 0, 142), (220, 20, 60))

# A process with TensorFlow only: what a serving client can read.
READ_METADATA_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import tensorflow as tf

    path, out = sys.argv[1:3]
    metadata = tf.saved_model.load(path).signatures["metadata"]()
    assert not any(name.startswith("danet_keras") for name in sys.modules), "danet_keras imported"
    with open(os.path.join(path, "assets", "labels.txt"), encoding="utf-8") as f:
        labels = f.read().splitlines()
    with open(out, "w") as f:
        json.dump(
            {
                "class_names": [n.decode() for n in metadata["class_names"].numpy()],
                "palette": metadata["palette"].numpy().tolist(),
                "classes_json": json.loads(metadata["classes_json"].numpy()),
                "labels": labels,
            },
            f,
        )
    """
)


@pytest.fixture(scope="module")
def named_model_file(tmp_path_factory):
    keras.utils.set_random_seed(3)
    model = danet_keras.DANet(
        len(NAMES), backbone="resnet18", head_channels=8, class_names=NAMES, palette=PALETTE
    )
    path = tmp_path_factory.mktemp("named") / "named.keras"
    model.save(path)
    return path


@pytest.mark.slow
def test_names_and_colours_survive_keras_saved_model_tflite_and_onnx(named_model_file, tmp_path):
    pytest.importorskip("tf2onnx")
    model = keras.saving.load_model(named_model_file)  # .keras -> every export
    artefacts = {
        "keras": str(named_model_file),
        "saved_model": export_saved_model(model, str(tmp_path / "saved_model")),
        "tflite": export_tflite(model, str(tmp_path / "m.tflite"), input_size=(32, 32)),
        "onnx": export_onnx_in_a_fresh_process(
            named_model_file, tmp_path / "m.onnx", input_size=(32, 32)
        ),
    }
    for artefact_format, path in artefacts.items():
        runner = load_runner(path)
        assert runner.format == artefact_format
        assert runner.num_classes == len(NAMES)
        assert runner.class_names == NAMES, artefact_format
        assert runner.palette == PALETTE, artefact_format


@pytest.mark.slow
def test_a_process_without_danet_keras_reads_them_from_the_saved_model(named_model_file, tmp_path):
    path = export_saved_model(keras.saving.load_model(named_model_file), str(tmp_path / "sm"))
    script = tmp_path / "read.py"
    script.write_text(READ_METADATA_SCRIPT)
    out = tmp_path / "out.json"
    # cwd outside the repository: `import danet_keras` must not be possible by accident.
    subprocess.run([sys.executable, str(script), path, str(out)], check=True, cwd=tmp_path)
    read = json.loads(out.read_text())
    assert read["class_names"] == read["labels"] == read["classes_json"]["class_names"]
    assert tuple(read["class_names"]) == NAMES
    assert tuple(map(tuple, read["palette"])) == PALETTE
    assert read["classes_json"]["palette"] == read["palette"]


def test_a_model_without_classes_exports_the_fallback_with_a_notice(tmp_path, caplog):
    model = build_small_danet()
    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        path = export_tflite(model, str(tmp_path / "old.tflite"), input_size=(32, 48))
    assert any("carries no class names" in r.getMessage() for r in caplog.records)
    runner = load_runner(path)
    assert runner.class_names == tuple(f"class_{k}" for k in range(runner.num_classes))
    outputs = runner(np.zeros((1, 32, 48, 3), np.uint8))
    assert outputs["class_ids"].shape == (1, 32, 48)


def test_a_saved_model_exported_without_metadata_still_serves(tmp_path, caplog):
    from danet_keras.data.classes import model_classes
    from danet_keras.export.saved_model import build_export_archive

    # What export_saved_model wrote before models carried classes: no `metadata` signature.
    build_export_archive(build_small_danet()).write_out(str(tmp_path / "old"), verbose=False)
    runner = load_runner(str(tmp_path / "old"))
    assert runner.class_names is None and runner.palette is None
    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        classes = model_classes(runner)
    assert "the SavedModel carries no class names" in caplog.records[0].getMessage()
    assert len(classes.class_names) == runner.num_classes == len(classes.palette)
    assert runner(np.zeros((1, 32, 48, 3), np.uint8))["class_ids"].shape == (1, 32, 48)
