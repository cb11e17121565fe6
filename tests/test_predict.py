import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from danet_keras.apps.predict import image_files, predict_files
from danet_keras.cli.main import main
from danet_keras.data.classes import DATASETS
from danet_keras.export import synthetic_images
from danet_keras.export.runners import KerasRunner, resize_images

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
        ["predict", "--model", keras_file, str(image_dir), "--output", str(tmp_path), "--overlay"]
    )
    assert code == 0
    assert "wrote 4 files" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "photo1.png_labels.png")


def test_cli_predict_errors(image_dir, tmp_path, capsys):
    missing_model = ["--model", str(tmp_path / "missing.keras")]
    assert main(["predict", *missing_model, str(image_dir), "--output", str(tmp_path / "o")]) == 2
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


# --- Real photos: EXIF orientation, resizing, mixed sizes -------------------------------------

# EXIF orientation 6: the pixels are stored turned 90 degrees counter-clockwise; a viewer
# turns them clockwise (what phones write for a portrait photo taken upright).
ROTATED_CLOCKWISE_FOR_DISPLAY = 6
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def portrait_jpeg(tmp_path_factory):
    """A portrait photo (96 high, 64 wide, upright) stored sideways with an EXIF tag."""
    upright = synthetic_images(1, (96, 64), seed=11)[0]
    stored = np.rot90(upright)  # 64 x 96: what the camera wrote
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_CLOCKWISE_FOR_DISPLAY
    path = tmp_path_factory.mktemp("phone") / "portrait.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(path, quality=95, exif=exif)
    return path


def test_a_portrait_photo_with_exif_rotation_is_predicted_upright(model, portrait_jpeg, tmp_path):
    predict_files(model, portrait_jpeg, tmp_path, optimize=False, progress=False)
    labels = np.asarray(Image.open(tmp_path / "portrait.jpg_labels.png"))
    assert labels.shape == (96, 64)  # the photo as it is seen, not as it is stored
    # The decoded JPEG turned clockwise by hand is what the model must have seen.
    with Image.open(portrait_jpeg) as stored:
        upright = np.rot90(np.asarray(stored.convert("RGB")), k=-1)
    np.testing.assert_array_equal(labels, KerasRunner(model)(upright[None])["class_ids"][0])


def test_short_side_gives_labels_at_each_photos_own_size(model, image_dir, tmp_path):
    written = predict_files(
        model, image_dir, tmp_path, short_side=32, optimize=False, progress=False
    )
    assert len(written) == 2  # a folder of two sizes
    for name, size in (("photo0.png", (64, 96)), ("photo1.png", (48, 80))):
        labels = np.asarray(Image.open(tmp_path / f"{name}_labels.png"))
        assert labels.shape == size
    # photo0 ran at 32x48 (short side 32, the aspect kept), its logits brought back up.
    photo = np.asarray(Image.open(image_dir / "photo0.png"))
    small = resize_images(photo[None], (32, 48), antialias=True)
    logits = tf.image.resize(KerasRunner(model)(small)["logits"], (64, 96)).numpy()
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "photo0.png_labels.png")), logits[0].argmax(-1)
    )


def test_cli_short_side_on_a_folder_of_mixed_sizes(keras_file, image_dir, portrait_jpeg, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in (image_dir / "photo0.png", image_dir / "photo1.png", portrait_jpeg):
        (photos / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    arguments = ["predict", "--model", keras_file, str(photos), "-o", str(out)]
    assert main(arguments + ["--short-side", "40", "--no-optimize"]) == 0
    sizes = {
        name: np.asarray(Image.open(out / f"{name}_labels.png")).shape
        for name in ("photo0.png", "photo1.png", "portrait.jpg")
    }
    assert sizes == {"photo0.png": (64, 96), "photo1.png": (48, 80), "portrait.jpg": (96, 64)}


def test_cli_refuses_a_bad_short_side_and_a_stride_alone(keras_file, image_dir, tmp_path, capsys):
    arguments = ["predict", "--model", keras_file, str(image_dir), "-o", str(tmp_path / "o")]
    assert main(arguments + ["--short-side", "0"]) == 2
    assert "--short-side takes a positive number" in capsys.readouterr().err
    assert main(arguments + ["--stride", "16"]) == 2
    assert "--stride needs --crop-size" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_old_out_flag_still_works_with_a_deprecation_line(
    keras_file, image_dir, tmp_path, capsys
):
    out = tmp_path / "old"
    code = main(
        ["predict", "--model", keras_file, str(image_dir / "photo0.png"), "--out", str(out)]
        + ["--sliding-window", "64", "32"]
    )
    assert code == 0 and (out / "photo0.png_labels.png").exists()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "danet-keras predict: `--out` is deprecated and goes in the next release; write `--output`",
        "danet-keras predict: `--sliding-window 64 32` is deprecated and goes in the next "
        "release; write `--crop-size 64 --stride 32`",
    ]
