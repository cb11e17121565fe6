"""Class colours as arrays: coloured label maps and overlays (uint8 images, no matplotlib).

    colours = colorize(prediction, "cityscapes")          # (H, W, 3) uint8
    blended = overlay(image, prediction, "cityscapes")   # image with the classes tinted in

A palette is a dataset name, a `DatasetInfo` or a (K, 3) array (see
`danet_keras.data.classes.palette_of`).
"""

import numpy as np

from danet_keras.data.classes import palette_of
from danet_keras.data.registry import IGNORE_INDEX


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


def classes_present(label_maps, num_classes, ignore_index=IGNORE_INDEX):
    """Sorted class ids in [0, num_classes) that occur in any of `label_maps`."""
    present = set()
    for label_map in label_maps:
        values = np.unique(np.asarray(label_map))
        present.update(int(v) for v in values if v != ignore_index and 0 <= v < num_classes)
    return sorted(present)
