import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from danet_keras.cli.main import main
from danet_keras.data.classes import DATASETS


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
    assert (output_dir / "export" / "danet" / "1" / "saved_model.pb").exists()
    assert (output_dir / "export" / "danet_demo.tflite").stat().st_size > 0
    assert "agreement" in summary["export_note"]
    assert "carries the model's 19 class names and colours" in summary["export_note"]
    assert "[demo] validation mIoU" in process.stdout
    # The trained model knows its classes (the demo city's are Cityscapes').
    assert "carries no class" not in process.stderr
    table = (output_dir / "evaluation" / "per_class_iou.csv").read_text()
    assert "road" in table and "class_0" not in table


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

    # A bare function carries no classes: the palette names them.
    paths = demo.write_overlays(
        predict, [(images, labels)], tmp_path, count=2, palette="cityscapes"
    )
    assert [os.path.basename(p) for p in paths] == ["val_000.png", "val_001.png"]
    (first, _) = figures
    assert [a.get_title() for a in first.axes] == [
        "validation image 0",
        "ground truth",
        "prediction (pixel accuracy 0.0%)",
    ]
    assert [t.get_text() for t in first.legends[0].get_texts()] == ["road", "car"]


# The demo's trained model, in every artefact, through `predict` (here, so that the one
# quick demo serves both tests, also when the test files run in separate workers).
@pytest.mark.slow
def test_a_model_trained_on_the_demo_city_predicts_in_cityscapes_colours(
    quick_demo, tmp_path, caplog
):
    output_dir, _ = quick_demo
    palette = DATASETS["cityscapes"].palette
    photo = sorted((output_dir / "demo_city" / "leftImg8bit" / "val").rglob("*.png"))[0]
    models = {
        "keras": output_dir / "training" / "best.keras",
        "saved_model": output_dir / "export" / "danet" / "1",
        "tflite": output_dir / "export" / "danet_demo.tflite",
    }
    for name, model in models.items():
        out = tmp_path / name
        # No --palette: the colours are the model's own, and no fallback notice.
        command = ["predict", "--model", str(model), str(photo), "--output", str(out), "--overlay"]
        assert main(command) == 0
        labels = Image.open(out / f"{photo.name}_labels.png")
        assert labels.mode == "P"
        np.testing.assert_array_equal(
            np.asarray(labels.getpalette()[: 3 * len(palette)]).reshape(-1, 3), palette, name
        )
        assert Image.open(out / f"{photo.name}_overlay.png").format == "PNG"
    assert not any("carries no class" in record.getMessage() for record in caplog.records)
