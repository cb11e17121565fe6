import json
import math
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end_in_its_quick_setting(tmp_path):
    output_dir = tmp_path / "demo"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "danet_keras.cli.main",
            "demo",
            "--quick",
            "--output-dir",
            str(output_dir),
            "--verbose",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    summary = json.loads((output_dir / "summary.json").read_text())
    assert math.isfinite(summary["mean_iou"])
    for key in (
        "data",
        "training",
        "best_model",
        "evaluation",
        "overlays",
        "training_curves",
        "position_attention",
        "channel_attention",
        "saved_model",
        "tflite",
    ):
        assert key in summary["paths"], key
    assert (output_dir / "demo_city" / "leftImg8bit" / "train").is_dir()
    assert (output_dir / "training" / "best.keras").exists()
    assert json.loads((output_dir / "evaluation" / "metrics.json").read_text())["num_images"] == 2
    assert (output_dir / "evaluation" / "confusion_matrix.png").exists()
    assert len(list((output_dir / "overlays").glob("val_*.png"))) == 2
    for name in ("position_attention.png", "channel_attention.png"):
        assert (output_dir / "attention" / name).exists()
    assert (output_dir / "training_curves.png").exists()
    assert (output_dir / "export" / "saved_model" / "saved_model.pb").exists()
    assert (output_dir / "export" / "danet_demo.tflite").stat().st_size > 0
    assert "agreement" in summary["export_note"]
    assert "[demo] validation mIoU" in process.stdout


def test_write_overlays_draws_titled_figures_with_the_classes_present(tmp_path, monkeypatch):
    import numpy as np

    from danet_keras import demo, visualize

    figures = []
    draw = visualize.plot_overlays

    def recording(*args, **kwargs):
        figures.append(draw(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(visualize, "plot_overlays", recording)
    images = np.zeros((2, 8, 16, 3), np.float32)
    labels = np.full((2, 8, 16), 255)
    labels[:, :4] = 13  # car

    def predict(batch):  # "road" everywhere: logits with class 0 highest
        return np.eye(19, dtype=np.float32)[np.zeros(batch.shape[:3], int)]

    paths = demo.write_overlays(predict, [(images, labels)], tmp_path, count=2)
    assert [os.path.basename(p) for p in paths] == ["val_000.png", "val_001.png"]
    (first, _) = figures
    assert [a.get_title() for a in first.axes] == [
        "validation image 0",
        "ground truth",
        "prediction (pixel accuracy 0.0%)",
    ]
    assert [t.get_text() for t in first.legends[0].get_texts()] == ["road", "car"]
