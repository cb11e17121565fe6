import json
import math

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end_in_its_quick_setting(quick_demo):
    output_dir, process = quick_demo
    summary = json.loads((output_dir / "summary.json").read_text())
    assert math.isfinite(summary["mean_iou"])
    for key in (
        "data",
        "training",
        "best_model",
        "evaluation",
        "overlays",
        "training_curves",
        "saved_model",
        "tflite",
    ):
        assert key in summary["paths"], key
    assert (output_dir / "demo_city" / "leftImg8bit" / "train").is_dir()
    assert (output_dir / "training" / "best.keras").exists()
    assert json.loads((output_dir / "evaluation" / "metrics.json").read_text())["num_images"] == 2
    assert (output_dir / "evaluation" / "confusion_matrix.png").exists()
    assert len(list((output_dir / "overlays").glob("val_*.png"))) == 2
    assert (output_dir / "training_curves.png").exists()
    assert (output_dir / "export" / "saved_model" / "saved_model.pb").exists()
    assert (output_dir / "export" / "danet_demo.tflite").stat().st_size > 0
    assert "agreement" in summary["export_note"]
    assert "carries the model's 19 class names and colours" in summary["export_note"]
    assert "[demo] validation mIoU" in process.stdout
    # The trained model knows its classes (the demo city's are Cityscapes').
    assert "carries no class" not in process.stderr
    table = (output_dir / "evaluation" / "per_class_iou.csv").read_text()
    assert "road" in table and "class_0" not in table
