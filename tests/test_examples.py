import importlib.util
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--backbone", "resnet18", "--size", "64x96"])
    try:
        runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    except SystemExit as exit_info:
        assert exit_info.code == 0
    out = capsys.readouterr().out
    assert "logits: (1, 64, 96, 19)" in out
    assert "position attention map (B, h, w, h, w): (1, 8, 12, 8, 12)" in out
    assert "identical outputs = True" in out


def load_example(name):
    """An example script as a module (its `main` not run)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- The notebook ---

NOTEBOOK = EXAMPLES / "danet_quickstart.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert len(markdown) >= len(code)  # every step explained


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_in_its_smoke_setting(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("DANET_SMOKE", "1")
    monkeypatch.setenv("DANET_WORK_DIR", str(tmp_path))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # A fresh kernel in the examples folder; any failing cell raises CellExecutionError.
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    ).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    # Crops, (keras-cv gallery), curves, confusion matrix, predictions, two attention figures.
    assert len(figures) >= 6
    text = "".join(o.get("text", "") for o in outputs)
    assert "mean IoU" in text  # the per-class table
    assert "each point's weights sum to [1.0" in text
    assert text.count("class_ids agreement") == 2  # SavedModel and TFLite against Keras
    assert (tmp_path / "danet" / "1" / "saved_model.pb").exists()  # a TF Serving version
    assert (tmp_path / "danet.tflite").exists()


def test_notebook_uses_the_public_api_only():
    import danet_keras

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    imported = re.findall(r"^\s*from (danet_keras[\w.]*) import \(?([\w, \n]+?)\)?$", source, re.M)
    assert imported
    for module_name, names in imported:
        # danet_keras or danet_keras.<public package or module>, never a module inside it.
        parts = module_name.split(".")
        assert len(parts) <= 2 and parts[-1] in ["danet_keras", *danet_keras.__all__], module_name
        module = importlib.import_module(module_name)
        public = getattr(module, "__all__", None) or [n for n in dir(module) if n[0] != "_"]
        for name in re.findall(r"\w+", names):
            assert name in public, f"{module_name}.{name} is not public"
    assert not re.search(r"^\s*import danet_keras\.", source, re.M)


def test_notebook_installs_first_and_says_when_to_restart():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code").source
    assert "DANET_KERAS_SOURCE =" in first and "pip" in first and "restart the kernel" in first
    assert "import tensorflow" not in first  # the old TensorFlow must not be loaded yet


# --- keras-io style training scripts ---


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, figure",
    [("train_cityscapes", "position_attention.png"), ("train_ade20k", "channel_attention.png")],
)
def test_training_script_smoke_run(script, figure, tmp_path):
    process = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{script}.py"), "--smoke", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "mIoU" in process.stdout
    for name in (
        "training_crops.png", figure, "training/final.keras", "danet/1/saved_model.pb",
    ):  # fmt: skip
        assert (tmp_path / name).exists(), name


@pytest.mark.parametrize("script", ["train_cityscapes", "train_ade20k"])
def test_training_scripts_import_without_running(script):
    # Importing runs no section (a notebook or a test can call them one by one) and
    # reads no command line: the settings are `parse_args`'s.
    module = load_example(script)
    assert callable(module.main)
    defaults = module.parse_args([])
    assert (defaults.smoke, defaults.mixed_precision, defaults.data_dir) == (False, False, None)
    smoke = module.parse_args(["--smoke", "-o", "runs/x"])
    assert (smoke.smoke, smoke.output) == (True, "runs/x")


# --- The ablation ---


def test_ablation_table_gives_mean_and_sample_std_beside_the_paper():
    ablation = load_example("ablation")
    records = [
        {"variant": variant, "seed": seed, "mean_iou": value}
        for variant, values in [("dilated FCN", (0.40, 0.44)), ("DANet (both)", (0.5, 0.5))]
        for seed, value in enumerate(values)
    ]
    table = ablation.markdown_table(records, "python examples/ablation.py").splitlines()
    assert table[2] == "| dilated FCN | 42.00 ± 2.83 | 2 | 40.00, 44.00 | 70.03 |"
    assert table[3] == "| DANet (both) | 50.00 ± 0.00 | 2 | 50.00, 50.00 | 76.34 |"
    one_seed = ablation.markdown_table(records[:1], "x").splitlines()
    assert one_seed[2] == "| dilated FCN | 40.00 ± n/a | 1 | 40.00 | 70.03 |"


@pytest.mark.slow
def test_ablation_smallest_setting_trains_every_variant(tmp_path, capsys):
    ablation = load_example("ablation")
    assert ablation.main(["--smoke", "--seeds", "1", "--output", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "results.json").read_text())
    assert [(r["variant"], r["seed"]) for r in records] == [(v, 0) for v in ablation.VARIANTS]
    assert all(0.0 <= r["mean_iou"] <= 1.0 for r in records)
    # Same backbone: the variants differ only in their heads.
    assert records[0]["parameters"] < records[1]["parameters"] < records[3]["parameters"]
    table = (tmp_path / "ablation.md").read_text()
    assert table.count(" ± n/a | 1 |") == 4
    assert capsys.readouterr().out.count("[ablation]") == 4
    # Run again: the recorded runs are not trained again.
    assert ablation.main(["--smoke", "--seeds", "1", "--output", str(tmp_path)]) == 0
    assert "[ablation]" not in capsys.readouterr().out


# --- The README's figures ---


@pytest.mark.slow
def test_readme_figures_are_written_from_a_model_and_the_demo_city(tmp_path):
    from danet_keras.data import make_demo_city

    from .export.conftest import build_small_danet

    model_path = tmp_path / "model.keras"
    build_small_danet().save(model_path)
    make_demo_city(tmp_path / "city", num_train=1, num_val=2, size=(64, 96))
    figures = load_example("readme_figures")
    arguments = ["--model", str(model_path), "--data-dir", str(tmp_path / "city")]
    assert figures.main(arguments + ["-o", str(tmp_path / "images"), "--images", "0", "1"]) == 0
    for name in ("overlays.png", "position_attention.png", "channel_attention.png"):
        assert (tmp_path / "images" / name).stat().st_size > 0
    with pytest.raises(ValueError, match=r"no images \[5\]"):
        figures.main(arguments + ["--output", str(tmp_path / "x"), "--attention-image", "5"])
