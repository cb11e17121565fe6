import logging
import os

import numpy as np
import pytest
from PIL import Image

from danet_keras.apps.predict import image_files, predict_files
from danet_keras.cli.main import main
from danet_keras.data.classes import DATASETS
from danet_keras.export import synthetic_images
from danet_keras.export.runners import KerasRunner

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
        model,
        image_dir,
        tmp_path,
        overlay=True,
        attention_points=[(10, 20), (40, 60)],
        palette="cityscapes",
        progress=False,
    )
    assert sorted(os.path.basename(p) for p in written) == sorted(
        f"photo{i}.png_{kind}.png" for i in range(2) for kind in ("labels", "overlay", "attention")
    )
    photo = np.asarray(Image.open(image_dir / "photo0.png"))
    labels = Image.open(tmp_path / "photo0.png_labels.png")
    assert labels.mode == "P"
    # predict_files runs `optimize_for_inference`'s graph (BatchNorm folded, Winograd), a
    # different computation from the plain model's: within `numerics.KERNEL_ORDER_RTOL` of the
    # logit range (tests/test_optimize.py), so classes agree except at near-ties.
    assert_classes_agree(np.asarray(labels), KerasRunner(model)(photo[None])["logits"][0])
    # The overlay and attention pictures are the visualize module's figures.
    for kind in ("overlay", "attention"):
        with Image.open(tmp_path / f"photo1.png_{kind}.png") as figure:
            assert figure.size[0] > 400


def test_predict_files_without_optimizing_runs_the_model_as_it_is(model, image_dir, tmp_path):
    predict_files(model, image_dir / "photo0.png", tmp_path, optimize=False, progress=False)
    photo = np.asarray(Image.open(image_dir / "photo0.png"))
    # The same eager model on the same pixels in the same process: exact.
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "photo0.png_labels.png")),
        KerasRunner(model)(photo[None])["class_ids"][0],
    )


def test_predict_files_draws_its_figures_with_plot_position_attention(
    model, image_dir, tmp_path, monkeypatch
):
    from danet_keras import visualize

    calls = []
    draw = visualize.plot_position_attention

    def recording(*args, **kwargs):
        calls.append((args[2], kwargs))
        return draw(*args, **kwargs)

    monkeypatch.setattr(visualize, "plot_position_attention", recording)
    predict_files(
        model, image_dir / "photo0.png", tmp_path, attention_points=[(5, 6)], progress=False
    )
    ((points, options),) = calls
    assert points == [(5, 6)]
    # Without a palette: numbered class names and the VOC colour map, one per model class.
    assert options["class_names"] == [f"class_{k}" for k in range(5)]
    assert len(options["palette"]) == 5


def test_sliding_window(model, image_dir, tmp_path):
    def labels(directory, **options):
        predict_files(
            model, image_dir / "photo0.png", tmp_path / directory, progress=False, **options
        )
        return np.asarray(Image.open(tmp_path / directory / "photo0.png_labels.png"))

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
    assert os.path.exists(tmp_path / "photo1.png_labels.png")


def test_cli_predict_errors(image_dir, tmp_path, capsys):
    missing_model = ["--model", str(tmp_path / "missing.keras")]
    assert main(["predict", *missing_model, str(image_dir), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no .png"):
        image_files(tmp_path)


def test_an_old_model_without_classes_predicts_with_the_fallback(
    model, image_dir, tmp_path, caplog
):
    from danet_keras.data.classes import bit_interleaved_palette

    assert model.class_names is None
    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        predict_files(model, image_dir / "photo0.png", tmp_path, progress=False)
    assert sum("carries no class names" in r.getMessage() for r in caplog.records) == 1
    labels = Image.open(tmp_path / "photo0.png_labels.png")
    palette = np.asarray(labels.getpalette()[: 3 * NUM_CLASSES]).reshape(-1, 3)
    np.testing.assert_array_equal(palette, bit_interleaved_palette(NUM_CLASSES))
    # --palette overrides the model's colours, and names its classes.
    predict_files(
        model, image_dir / "photo0.png", tmp_path / "p", palette="cityscapes", progress=False
    )
    palette = Image.open(tmp_path / "p" / "photo0.png_labels.png").getpalette()[: 3 * NUM_CLASSES]
    np.testing.assert_array_equal(
        np.asarray(palette).reshape(-1, 3), DATASETS["cityscapes"].palette[:NUM_CLASSES]
    )
