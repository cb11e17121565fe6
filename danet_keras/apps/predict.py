"""Segmentation of image files with any artefact: label PNGs, overlays, attention maps.

    danet_keras.predict.predict_files("model.keras", "photos/", "out/", short_side=512)

writes, for each image `name.jpg` (the name keeps its extension, so that
`a.png` and `a.jpg` never share an output), `out/name.jpg_labels.png` (a
palette PNG whose pixel values are the class ids) at the image's own size,
upright as its EXIF orientation says (phone photos are stored sideways with a
tag that viewers honour). With `short_side`, the model runs on the image
resized so that its shorter side has that many pixels, and the labels are
brought back to the image's size; images of any sizes mix. With `overlay=True`
`out/name.jpg_overlay.png` (the photo beside its prediction, titled, with a
legend of the classes present: `visualize.plot_overlays`) and, with attention
points (y, x), `out/name.jpg_attention.png`: where the position attention of
each point looks, the point marked, with a colour scale and its predicted
class (`visualize.plot_position_attention`; Keras models only: exported
artefacts do not expose the attention).

Every output is checked before the first is written: an output folder that
is the current folder or holds an input, or an output file that danet-keras
did not write, refuses the whole run; one that it wrote earlier is replaced
only with `overwrite=True` (`danet_keras.utils.output_paths`).
"""

import os

import numpy as np
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from danet_keras import visualize  # figures looked up when drawn (tests record them)
from danet_keras.data.augment import short_side_size
from danet_keras.data.files import IMAGE_EXTENSIONS, list_files
from danet_keras.export.runners import (
    KerasRunner,
    load_runner,
    outputs_at_size,
    outputs_from_logits,
    resize_images,
)
from danet_keras.inference.optimize import inference_model
from danet_keras.inference.strategies import sliding_window_logits
from danet_keras.utils.atomic_io import save_png
from danet_keras.utils.output_paths import check_files, check_output_folder, record_files

PREDICTION_KIND = "prediction"


def image_files(path):
    """The image files at `path` (a file, or a directory's images sorted by name)."""
    path = str(path)
    if os.path.isdir(path):
        files = list_files(path, IMAGE_EXTENSIONS, recursive=False)
        if not files:
            raise FileNotFoundError(
                f"{path}: no {'/'.join(IMAGE_EXTENSIONS)} images in this directory."
            )
        return files
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory.")
    return [path]


def read_image(path):
    """An image file as uint8 RGB (H, W, 3), turned upright as its EXIF orientation says."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def model_image(image, short_side=None):
    """The image the model sees: `image` itself, or resized to a shorter side of `short_side`.

    Args:
        image: uint8 (H, W, 3).
        short_side: None, or the length in pixels of the shorter side.

    Returns:
        uint8 (h, w, 3); bilinear with antialiasing when shrinking.
    """
    if short_side is None:
        return image
    size = tuple(int(side) for side in short_side_size(image.shape[:2], short_side).numpy())
    return resize_images(image[None], size, antialias=True)[0]


def segment(runner, image, sliding_window=None, short_side=None):
    """Runner outputs for one uint8 image (H, W, 3), optionally by sliding window.

    Args:
        runner: a runner from `export.runners` (or `KerasRunner(model)`).
        image: uint8 (H, W, 3).
        sliding_window: None (one pass over the whole image) or
            (crop_size, stride) for `inference.sliding_window_logits`
            (stride None: 2/3 of the crop), in the model image's pixels.
        short_side: None, or run the model on the image resized to this
            shorter side (`model_image`).

    Returns:
        Dict of (1, H, W, ...) NumPy outputs, at the image's own size.
    """
    pixels = model_image(image, short_side)
    if sliding_window is None:
        outputs = runner(pixels[None])
    else:
        crop_size, stride = sliding_window
        if runner.format == "keras":
            model = runner.model
        else:

            def model(windows):
                windows = np.clip(np.round(np.asarray(windows)), 0, 255).astype(np.uint8)
                outputs = runner(windows)
                if "logits" not in outputs:
                    raise ValueError(
                        "sliding-window inference averages logits; this artefact returns "
                        f"{', '.join(outputs)} only (export it with the logits output)."
                    )
                return outputs["logits"]

        logits = sliding_window_logits(model, pixels[None], crop_size, stride)
        outputs = outputs_from_logits(logits)
    return outputs_at_size(outputs, image.shape[:2])


def predict_files(
    model,
    inputs,
    output_dir,
    overlay=False,
    attention_points=(),
    sliding_window=None,
    palette=None,
    class_names=None,
    progress=True,
    optimize=True,
    overwrite=False,
    short_side=None,
    **runner_options,
):
    """Segments image files and writes label PNGs (and overlays, attention maps).

    Args:
        model: a `.keras` file, a SavedModel directory, a `.tflite` or an
            `.onnx` file, or a Keras model object.
        inputs: an image file or a directory of images.
        output_dir: where the PNGs go (created if missing).
        overlay: also write the colour overlay.
        attention_points: (y, x) pixels whose position-attention maps are
            written (Keras models only), in the image's own coordinates.
        sliding_window: None, or (crop_size, stride): see `segment`.
        palette: None: the colours the model carries (the PASCAL VOC colour
            map for one that carries none); or colours that override them: a
            dataset name (e.g. `"cityscapes"`, which also names the classes of
            a model that carries no names), a `DatasetInfo` or a (K, 3) array.
        class_names: K class names for the figures' titles and legends;
            None: the model's own (see `visualize.class_names_and_palette`).
        progress: show a progress bar.
        optimize: run a Keras model as `danet_keras.optimize_for_inference`
            rewrites it (the same outputs within 1e-4 of the logit range, fewer
            FLOPs); False: as it is.
        overwrite: replace outputs that danet-keras wrote earlier (others
            are never replaced).
        short_side: None (each image at its own size), or run the model on
            each image resized so that its shorter side has this many pixels;
            the labels are written at the image's own size either way.
        **runner_options: options of `export.runners.load_runner`.

    Returns:
        The list of written file paths.
    """
    if short_side is not None and (isinstance(short_side, bool) or int(short_side) < 1):
        raise ValueError(f"`short_side` must be a positive number of pixels, got {short_side!r}.")
    files = image_files(inputs)
    model_path = None if hasattr(model, "predict") else model
    check_output_folder(output_dir, inputs=[inputs, model_path])
    outputs_of = {
        path: {
            kind: os.path.join(output_dir, f"{os.path.basename(path)}_{kind}.png")
            for kind, wanted in (
                ("labels", True),
                ("overlay", overlay),
                ("attention", attention_points),
            )
            if wanted
        }
        for path in files
    }
    check_files(
        {output: path for path, outputs in outputs_of.items() for output in outputs.values()},
        PREDICTION_KIND,
        overwrite,
        inputs=[inputs, model_path],
    )
    runner = (
        KerasRunner(model) if hasattr(model, "predict") else load_runner(model, **runner_options)
    )
    # The attention figures read the model's own layers; the rewritten graph serves the rest.
    attention_model = runner.model if runner.format == "keras" else None
    if runner.format == "keras":
        # Float32 whatever policy the model was trained under; the inference graph unless
        # `optimize=False`.
        runner = KerasRunner(inference_model(runner.model, optimize))
    if attention_points and runner.format != "keras":
        raise ValueError(
            f"attention maps need a Keras model (.keras), got a {runner.format} artefact."
        )
    names, colours = visualize.class_names_and_palette(None, class_names, palette, model=runner)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in tqdm(files, desc="predict", unit="image", disable=not progress or len(files) < 2):
        image = read_image(path)
        outputs = segment(runner, image, sliding_window, short_side)
        class_ids = outputs["class_ids"][0]
        targets = outputs_of[path]
        written.append(save_png(targets["labels"], class_ids, colours))
        title = os.path.basename(path)
        if overlay:
            figure = visualize.plot_overlays(
                image, predictions=class_ids, class_names=names, palette=colours, titles=[title]
            )
            written.append(visualize.save_figure(figure, targets["overlay"]))
        if attention_points:
            # Drawn on the image the model saw, the points moved with it.
            seen = model_image(image, short_side)
            scale = np.divide(seen.shape[:2], image.shape[:2])
            points = [tuple(int(v) for v in np.asarray(p) * scale) for p in attention_points]
            figure = visualize.plot_position_attention(
                attention_model, seen, points, class_names=names, palette=colours
            )
            written.append(visualize.save_figure(figure, targets["attention"]))
        record_files(list(targets.values()), PREDICTION_KIND)
    return written
