import json
import re

import numpy as np
import pytest

from danet_keras import DANet
from danet_keras.apps.evaluation import evaluate
from danet_keras.inference import (
    PAPER_SCALES,
    logits_function,
    multi_scale_logits,
    sliding_window_logits,
    window_starts,
)

from .numerics import assert_logits_close


@pytest.fixture(scope="module")
def model():
    return DANet(4, backbone="resnet18", head_channels=16)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, 40, 56, 3)).astype(np.float32)


def test_window_starts_cover_the_axis_and_end_inside():
    assert window_starts(10, 10, 3) == [0]
    assert window_starts(1024, 768, 512) == [0, 256]
    assert window_starts(2048, 768, 512) == [0, 512, 1024, 1280]
    for size, window, stride in ((100, 30, 20), (57, 16, 16), (33, 32, 1)):
        starts = window_starts(size, window, stride)
        assert starts[0] == 0 and starts[-1] == size - window
        assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_whole_image_window_and_single_scale_equal_plain_inference(model, images):
    plain = np.asarray(logits_function(model)(images))
    np.testing.assert_array_equal(sliding_window_logits(model, images, (40, 56)), plain)
    # A crop larger than the image is clipped to it: still one window, no padding.
    np.testing.assert_array_equal(sliding_window_logits(model, images, 512), plain)
    np.testing.assert_array_equal(multi_scale_logits(model, images, [1.0], flip=False), plain)
    np.testing.assert_array_equal(multi_scale_logits(model, images, [1.0], crop_size=64), plain)
    # Eager layers against the traced function: another graph, other kernels.
    eager = np.asarray(model(images, training=False)["logits"])
    assert_logits_close(plain, eager)


def test_sliding_window_averages_overlapping_windows(model, images):
    crop, stride = (24, 32), (16, 24)
    expected = np.zeros(images.shape[:3] + (4,), np.float32)
    counts = np.zeros(images.shape[1:3], np.float32)
    predict = logits_function(model)
    for top in window_starts(40, 24, 16):
        for left in window_starts(56, 32, 24):
            expected[:, top : top + 24, left : left + 32] += np.asarray(
                predict(images[:, top : top + 24, left : left + 32])
            )
            counts[top : top + 24, left : left + 32] += 1
    # Same traced function, same shapes, same NumPy sums in the same order: rounding at most.
    np.testing.assert_allclose(
        sliding_window_logits(model, images, crop, stride), expected / counts[..., None], rtol=1e-6
    )


def test_flip_and_scales_average_the_right_terms(model, images):
    predict = logits_function(model)
    flipped = np.asarray(predict(np.ascontiguousarray(images[:, :, ::-1])))[:, :, ::-1]
    plain = np.asarray(predict(images))
    # Same traced function, same shapes, same NumPy sums in the same order: rounding at most.
    np.testing.assert_allclose(
        multi_scale_logits(model, images, [1.0], flip=True), (plain + flipped) / 2, rtol=1e-6
    )
    result = multi_scale_logits(model, images, [0.5, 1.0, 1.5], flip=True, crop_size=32)
    assert result.shape == images.shape[:3] + (4,)
    assert np.all(np.isfinite(result))


def test_any_callable_returning_logits_works(images):
    constant = np.zeros((1, 1, 1, 3), np.float32)
    constant[..., 1] = 1.0
    fake = lambda x: {"logits": np.broadcast_to(constant, x.shape[:3] + (3,))}  # noqa: E731
    logits = sliding_window_logits(fake, images, 16, 8)
    assert logits.shape == images.shape[:3] + (3,)
    np.testing.assert_allclose(logits[..., 1], 1.0)


def test_evaluate_writes_table_json_csv_and_png(model, images, tmp_path, capsys):
    labels = np.random.default_rng(1).integers(0, 4, images.shape[:3]).astype(np.int32)
    labels[:, :4] = 255
    batches = [(images[:1], labels[:1]), (images[1:], labels[1:])]
    result = evaluate(
        model,
        batches,
        scales=[1.0],
        flip=True,
        crop_size=32,
        class_names=["a", "b", "c", "d"],
        output_dir=tmp_path,
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert "mean IoU" in printed and "pixel acc." in printed
    # A progress bar with the total, elapsed time and ETA (tqdm, on stdout as Keras' bars).
    assert re.search(r"evaluate: 100%\|.*\| 2/2 \[\d\d:\d\d<\d\d:\d\d", printed), printed
    assert captured.err == ""
    assert result.num_images == 2
    assert result.confusion_matrix.sum() == (labels != 255).sum()
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["mean_iou"] == pytest.approx(result.mean_iou)
    assert set(written["per_class_iou"]) == {"a", "b", "c", "d"}
    assert written["settings"] == {"scales": [1.0], "flip": True, "crop_size": 32, "stride": None}
    rows = (tmp_path / "per_class_iou.csv").read_text().splitlines()
    assert rows[0].startswith("class_id,class,iou") and len(rows) == 5
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_resizes_logits_to_label_resolution(model, images):
    labels = np.zeros((2, 80, 112), np.int32)
    result = evaluate(model, [(images, labels)], verbose=False)
    assert result.confusion_matrix.sum() == 2 * 80 * 112


def test_bad_arguments(model, images):
    with pytest.raises(ValueError, match="scales"):
        multi_scale_logits(model, images, [])
    with pytest.raises(ValueError, match="crop_size"):
        sliding_window_logits(model, images, 0)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(model, [], verbose=False)
    with pytest.raises(ValueError, match="class_names"):
        evaluate(model, [], class_names=["a"], verbose=False)
    assert PAPER_SCALES[0] == 0.5 and PAPER_SCALES[-1] == 2.2


def test_cli_evaluates_a_saved_model_on_a_dataset_split(tmp_path, capsys):
    from danet_keras.cli.main import main
    from danet_keras.data import make_demo_city

    make_demo_city(tmp_path / "city", num_train=1, num_val=2, size=(32, 64))
    DANet(19, backbone="resnet18", head_channels=16).save(tmp_path / "model.keras")
    code = main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "model.keras"),
            "--dataset",
            "demo_city",
            "--data-dir",
            str(tmp_path / "city"),
            "--crop-size",
            "32",
            "--flip",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    assert "road" in capsys.readouterr().out
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["num_images"] == 2 and written["settings"]["crop_size"] == [32, 32]
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tmp_path / "model.keras"),
                "--dataset",
                "demo_city",
                "--data-dir",
                str(tmp_path / "city"),
                "--stride",
                "8",
            ]
        )
        == 2
    )


def test_cli_evaluates_a_folder_dataset_named_by_class_names(tmp_path, capsys):
    from PIL import Image

    from danet_keras.cli.main import main

    rng = np.random.default_rng(0)
    for folder in ("images", "labels"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    for index in range(2):
        image = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / "data" / "images" / f"{index}.png")
        label = rng.integers(0, 3, (32, 48), dtype=np.uint8)
        Image.fromarray(label).save(tmp_path / "data" / "labels" / f"{index}.png")
    (tmp_path / "classes.txt").write_text("ground\nwater\nsky\n")
    DANet(3, backbone="resnet18", head_channels=16).save(tmp_path / "model.keras")
    arguments = ["evaluate", "--model", str(tmp_path / "model.keras"), "--dataset", "folder"]
    arguments += ["--data-dir", str(tmp_path / "data"), "--split", "", "-o", str(tmp_path / "out")]
    assert main(arguments + ["--class-names", str(tmp_path / "classes.txt")]) == 0
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["num_images"] == 2
    # The model carries no names: the table uses the ones given for the folder.
    assert list(written["per_class_iou"]) == ["ground", "water", "sky"]
    # A folder dataset without them is refused in one line.
    assert main(arguments + ["--overwrite"]) == 2
    assert "class_names" in capsys.readouterr().err
