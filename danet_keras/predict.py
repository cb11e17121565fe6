"""Segmentation of image files with any artefact: label PNGs, overlays, attention maps.

    danet_keras.predict.predict_files("model.keras", "photos/", "out/", overlay=True)

writes, for each image `name.png|jpg`, `out/name_labels.png` (a palette PNG
whose pixel values are the class ids), with `overlay=True` `out/name_overlay.png`
(the colour-coded classes blended over the photo) and, for each attention
point (y, x), `out/name_attention_y{y}_x{x}.png`: where the position
attention of that pixel looks, as a heat map over the photo (Keras models
only: exported artefacts do not expose the attention).
"""

import os

import numpy as np

from danet_keras.data.image_io import IMAGE_EXTENSIONS, list_files
from danet_keras.export.runners import KerasRunner, load_runner, outputs_from_logits


def class_palette(palette, num_classes):
    """(K, 3) uint8 class colours: `palette` (see `visualize.palette_of`), or
    the PASCAL VOC colour map for `num_classes` classes when it is None."""
    from danet_keras.data.labels import bit_interleaved_palette
    from danet_keras.visualize import palette_of

    if palette is None:
        return bit_interleaved_palette(max(int(num_classes), 1))
    return palette_of(palette)


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
    """An image file as uint8 RGB (H, W, 3)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def position_attention_maps(model, image, points):
    """Where the position attention of each point looks, at the image's size.

    Args:
        model: a `danet_keras.DANet` with position attention.
        image: uint8 (H, W, 3).
        points: (y, x) pixel coordinates in the image.

    Returns:
        float32 (len(points), H, W): each map is the point's attention over
        all positions (sums to 1 at feature resolution), bilinearly upsampled
        and scaled to [0, 1].
    """
    import keras
    import tensorflow as tf

    try:
        layer = model.get_layer("position_attention")
    except ValueError as error:
        raise ValueError("attention maps need a model with position attention.") from error
    features = keras.Model(model.input, layer.input)(image[None].astype(np.float32), training=False)
    _, attention = layer(features, return_attention_scores=True)
    attention = np.asarray(attention)[0]  # (h, w, h, w)
    feature_height, feature_width = attention.shape[:2]
    height, width = image.shape[:2]
    maps = []
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(
                f"attention point (y={y}, x={x}) is outside the {height}x{width} image."
            )
        row = min(int(y * feature_height / height), feature_height - 1)
        column = min(int(x * feature_width / width), feature_width - 1)
        maps.append(attention[row, column])
    maps = tf.image.resize(np.stack(maps)[..., None], (height, width)).numpy()[..., 0]
    peak = maps.reshape(len(points), -1).max(axis=1).reshape(-1, 1, 1)
    return (maps / np.maximum(peak, 1e-12)).astype(np.float32)


def segment(runner, image, sliding_window=None):
    """Runner outputs for one uint8 image (H, W, 3), optionally by sliding window.

    Args:
        runner: a runner from `export.runners` (or `KerasRunner(model)`).
        image: uint8 (H, W, 3).
        sliding_window: None (one pass over the whole image) or
            (crop_size, stride) for `inference.sliding_window_logits`
            (stride None: 2/3 of the crop).

    Returns:
        Dict of (1, H, W, ...) NumPy outputs.
    """
    if sliding_window is None:
        return runner(image[None])
    from danet_keras.inference import sliding_window_logits

    crop_size, stride = sliding_window
    if runner.format == "keras":
        model = runner.model
    else:

        def model(windows):
            pixels = np.clip(np.round(np.asarray(windows)), 0, 255).astype(np.uint8)
            return runner(pixels)["logits"]

    return outputs_from_logits(sliding_window_logits(model, image[None], crop_size, stride))


def predict_files(
    model,
    inputs,
    output_dir,
    overlay=False,
    attention_points=(),
    sliding_window=None,
    palette=None,
    progress=True,
    optimize=True,
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
            written (Keras models only).
        sliding_window: None, or (crop_size, stride): see `segment`.
        palette: class colours: a dataset name (e.g. `"cityscapes"`), a
            `DatasetInfo` or a (K, 3) array; None: the PASCAL VOC colour map.
        progress: show a progress bar.
        optimize: run a Keras model as `danet_keras.optimize_for_inference`
            rewrites it (the same outputs within 1e-4 of the logit range, fewer
            FLOPs); False: as it is.
        **runner_options: options of `export.runners.load_runner`.

    Returns:
        The list of written file paths.
    """
    from tqdm.auto import tqdm

    from danet_keras.atomic_io import save_png
    from danet_keras.optimize import optimize_for_inference
    from danet_keras.visualize import heat_map_overlay
    from danet_keras.visualize import overlay as overlay_classes

    runner = (
        KerasRunner(model) if hasattr(model, "predict") else load_runner(model, **runner_options)
    )
    if runner.format == "keras" and optimize:
        runner = KerasRunner(optimize_for_inference(runner.model))
    if attention_points and runner.format != "keras":
        raise ValueError(
            f"attention maps need a Keras model (.keras), got a {runner.format} artefact."
        )
    files = image_files(inputs)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in tqdm(files, desc="predict", unit="image", disable=not progress or len(files) < 2):
        image = read_image(path)
        outputs = segment(runner, image, sliding_window)
        class_ids = outputs["class_ids"][0]
        colours = class_palette(palette, outputs["probabilities"].shape[-1])
        stem = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0])
        save_png(f"{stem}_labels.png", class_ids, colours)
        written.append(f"{stem}_labels.png")
        if overlay:
            save_png(f"{stem}_overlay.png", overlay_classes(image, class_ids, colours))
            written.append(f"{stem}_overlay.png")
        if attention_points:
            maps = position_attention_maps(runner.model, image, attention_points)
            for (y, x), values in zip(attention_points, maps):
                name = f"{stem}_attention_y{y}_x{x}.png"
                save_png(name, heat_map_overlay(image, values))
                written.append(name)
    return written
