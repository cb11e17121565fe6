"""Colouring label maps and overlaying them on images, with each dataset's palette.

colors = colorize(prediction, "cityscapes")          # (H, W, 3) uint8
blended = overlay(image, prediction, "cityscapes")   # image with the classes tinted in
"""

import numpy as np

from danet_keras.data.labels import DATASETS, IGNORE_INDEX


def palette_of(palette_or_dataset):
    """(K, 3) uint8 palette from a dataset name, a `DatasetInfo` or an array."""
    if isinstance(palette_or_dataset, str):
        if palette_or_dataset not in DATASETS:
            raise ValueError(f"unknown dataset {palette_or_dataset!r}; known: {sorted(DATASETS)}")
        return DATASETS[palette_or_dataset].palette
    if hasattr(palette_or_dataset, "palette"):
        return palette_or_dataset.palette
    palette = np.asarray(palette_or_dataset)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"a palette has shape (K, 3), got {palette.shape}")
    return palette.astype(np.uint8)


def colorize(label_map, palette="cityscapes", ignore_index=IGNORE_INDEX, ignore_color=(0, 0, 0)):
    """Colours a map of train ids.

    Args:
        label_map: (..., H, W) integer array (or tensor) of train ids.
        palette: dataset name, `DatasetInfo`, or (K, 3) colour array.
        ignore_index: value drawn in `ignore_color`.
        ignore_color: RGB of ignored pixels.

    Returns:
        (..., H, W, 3) uint8 array.
    """
    colours = palette_of(palette)
    label_map = np.asarray(label_map).astype(np.int64)
    valid = (label_map >= 0) & (label_map < len(colours))
    unknown = ~valid & (label_map != ignore_index)
    if unknown.any():
        raise ValueError(
            f"label value {int(label_map[unknown].flat[0])} is outside the palette's "
            f"{len(colours)} classes and is not the ignore index {ignore_index}"
        )
    table = np.concatenate([colours, np.asarray([ignore_color], np.uint8)])
    return table[np.where(valid, label_map, len(colours))]


def overlay(image, label_map, palette="cityscapes", alpha=0.5, ignore_index=IGNORE_INDEX):
    """Blends the coloured label map into the image; ignored pixels keep the image.

    Args:
        image: (H, W, 3) uint8 or float in [0, 255].
        label_map: (H, W) integer train ids.
        palette: dataset name, `DatasetInfo`, or (K, 3) colours.
        alpha: weight of the colours (0 = image only, 1 = colours only).
        ignore_index: value left uncoloured.

    Returns:
        (H, W, 3) uint8 array.
    """
    image = np.asarray(image, np.float32)
    label_map = np.asarray(label_map)
    if image.shape[:2] != label_map.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {label_map.shape} differ in size")
    colours = colorize(label_map, palette, ignore_index).astype(np.float32)
    weight = np.where(label_map == ignore_index, 0.0, float(alpha))[..., None]
    return np.clip(image * (1 - weight) + colours * weight, 0, 255).round().astype(np.uint8)


def legend(class_names_or_dataset, palette=None):
    """[(class name, (r, g, b))] for a dataset name / `DatasetInfo`, or names plus a palette."""
    if isinstance(class_names_or_dataset, str) or hasattr(class_names_or_dataset, "class_names"):
        info = (
            DATASETS[class_names_or_dataset]
            if isinstance(class_names_or_dataset, str)
            else class_names_or_dataset
        )
        names, colours = info.class_names, info.palette
    else:
        names, colours = class_names_or_dataset, palette_of(palette)
    return [(name, tuple(int(c) for c in colour)) for name, colour in zip(names, colours)]
