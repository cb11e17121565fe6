import logging
import os

import numpy as np
import pytest
from PIL import Image

from danet_keras.cli.main import main
from danet_keras.data.labels import DATASETS
from danet_keras.export import synthetic_images
from danet_keras.export.runners import KerasRunner
from danet_keras.predict import image_files, position_attention_maps, predict_files
from danet_keras.visualize import overlay

from .export.conftest import NUM_CLASSES, build_small_danet
from .numerics import assert_classes_agree


@pytest.fixture(scope="module")
def model():
    return build_small_danet()


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("photos")
    for index, size in enumerate([(64, 96), (48, 80)]):
        Image.fromarray(synthetic_images(1, size, seed=index)[0]).save(
            directory / f"photo{index}.png"
        )
    (directory / "notes.txt").write_text("not an image")
    return directory


@pytest.fixture(scope="module")
def keras_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "danet.keras"
    model.save(path)
    return str(path)


def test_predict_files_writes_labels_overlays_and_attention(model, image_dir, tmp_path):
    written = predict_files(
        model, image_dir, tmp_path, overlay=True, attention_points=[(10, 20)], progress=False
    )
    assert sorted(os.path.basename(p) for p in written) == sorted(
        f"photo{i}_{kind}.png"
        for i in range(2)
        for kind in ("labels", "overlay", "attention_y10_x20")
    )
    photo = np.asarray(Image.open(image_dir / "photo0.png"))
    labels = Image.open(tmp_path / "photo0_labels.png")
    assert labels.mode == "P"
    # The same eager model on the same pixels in the same process: exact.
    np.testing.assert_array_equal(
        np.asarray(labels), KerasRunner(model)(photo[None])["class_ids"][0]
    )
    assert np.asarray(Image.open(tmp_path / "photo1_overlay.png")).shape == (48, 80, 3)


def test_position_attention_maps(model):
    image = synthetic_images(1, (64, 96), seed=3)[0]
    maps = position_attention_maps(model, image, [(0, 0), (63, 95)])
    assert maps.shape == (2, 64, 96)
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0, rtol=1e-5)
    assert not np.allclose(maps[0], maps[1])  # the two points attend differently
    with pytest.raises(ValueError, match="outside"):
        position_attention_maps(model, image, [(64, 0)])


def test_sliding_window(model, image_dir, tmp_path):
    def labels(directory, **options):
        predict_files(
            model, image_dir / "photo0.png", tmp_path / directory, progress=False, **options
        )
        return np.asarray(Image.open(tmp_path / directory / "photo0_labels.png"))

    plain = labels("plain")
    # A window as large as the image is one plain pass, though through the
    # traced function rather than eager layers: near-ties may flip.
    photo = np.asarray(Image.open(image_dir / "photo0.png"))
    assert_classes_agree(
        labels("whole", sliding_window=(96, None)), KerasRunner(model)(photo[None])["logits"][0]
    )
    # Two overlapping 64x64 windows over the 64x96 image still label every pixel.
    assert labels("windows", sliding_window=(64, 32)).shape == plain.shape


@pytest.mark.slow
def test_cli_predict_on_a_keras_file(keras_file, image_dir, tmp_path, capsys):
    code = main(
        ["predict", "--model", keras_file, str(image_dir), "--out", str(tmp_path), "--overlay"]
    )
    assert code == 0
    assert "wrote 4 files" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "photo1_labels.png")


def test_cli_predict_errors(tmp_path, capsys):
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "missing.keras"),
                str(tmp_path),
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no .png"):
        image_files(tmp_path)


@pytest.mark.slow
def test_a_model_trained_on_the_demo_city_predicts_in_cityscapes_colours(
    quick_demo, tmp_path, caplog
):
    output_dir, _ = quick_demo
    palette = DATASETS["cityscapes"].palette
    photo = sorted((output_dir / "demo_city" / "leftImg8bit" / "val").rglob("*.png"))[0]
    models = {
        "keras": output_dir / "training" / "best.keras",
        "saved_model": output_dir / "export" / "saved_model",
        "tflite": output_dir / "export" / "danet_demo.tflite",
    }
    for name, model in models.items():
        out = tmp_path / name
        # No --palette: the colours are the model's own, and no fallback notice.
        command = ["predict", "--model", str(model), str(photo), "--out", str(out), "--overlay"]
        assert main(command) == 0
        labels = Image.open(out / f"{photo.stem}_labels.png")
        assert labels.mode == "P"
        np.testing.assert_array_equal(
            np.asarray(labels.getpalette()[: 3 * len(palette)]).reshape(-1, 3), palette, name
        )
        class_ids = np.asarray(labels)
        expected = overlay(np.asarray(Image.open(photo).convert("RGB")), class_ids, palette)
        np.testing.assert_array_equal(
            np.asarray(Image.open(out / f"{photo.stem}_overlay.png")), expected
        )
    assert not any("carries no class" in record.getMessage() for record in caplog.records)


def test_an_old_model_without_classes_predicts_with_the_fallback(
    model, image_dir, tmp_path, caplog
):
    from danet_keras.data.labels import bit_interleaved_palette

    assert model.class_names is None
    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        predict_files(model, image_dir / "photo0.png", tmp_path, progress=False)
    assert sum("carries no class names" in r.getMessage() for r in caplog.records) == 1
    labels = Image.open(tmp_path / "photo0_labels.png")
    palette = np.asarray(labels.getpalette()[: 3 * NUM_CLASSES]).reshape(-1, 3)
    np.testing.assert_array_equal(palette, bit_interleaved_palette(NUM_CLASSES))
    # --palette overrides the model's colours, and names its classes.
    predict_files(
        model, image_dir / "photo0.png", tmp_path / "p", palette="cityscapes", progress=False
    )
    palette = Image.open(tmp_path / "p" / "photo0_labels.png").getpalette()[: 3 * NUM_CLASSES]
    np.testing.assert_array_equal(
        np.asarray(palette).reshape(-1, 3), DATASETS["cityscapes"].palette[:NUM_CLASSES]
    )
