"""Pictures: coloured label maps, overlays, and the figures of the demo, `predict` and notebooks.

    colors = colorize(prediction, "cityscapes")          # (H, W, 3) uint8
    blended = overlay(image, prediction, "cityscapes")   # image with the classes tinted in
    figure = plot_confusion_matrix(matrix, class_names)  # a matplotlib Figure
    save_figure(figure, "confusion_matrix.png")

Array functions return uint8 images; `plot_*` functions return matplotlib
figures, which a notebook shows inline and `save_figure` writes.
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


# === Figures ===
# Built on `matplotlib.figure.Figure`, not pyplot: a library should not keep
# figures alive in pyplot's global state. A notebook shows the returned figure;
# `save_figure` writes it.


def new_figure(width, height):
    """A matplotlib `Figure` of `width` x `height` inches with a canvas attached."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path, dpi=120):
    """Writes `figure` as a PNG (written to a temporary name, then renamed into place)."""
    from danet_keras.atomic_io import atomic_path

    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")
    return path


def heat_map_overlay(image, values, alpha=0.6):
    """A [0, 1] map (H, W) in matplotlib's `inferno` colours blended over a uint8 image."""
    from matplotlib import colormaps

    colours = colormaps["inferno"](values)[..., :3] * 255.0
    mixed = alpha * colours + (1.0 - alpha) * np.asarray(image, np.float32)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def plot_confusion_matrix(matrix, class_names, present_only=True):
    """The row-normalised confusion matrix (recall per class).

    Args:
        matrix: (K, K) counts, rows ground truth.
        class_names: K names.
        present_only: show only the classes that occur in the ground truth
            or the predictions (a demo city has 10 of Cityscapes' 19).

    Returns:
        A matplotlib `Figure`.
    """
    matrix = np.asarray(matrix, np.float64)
    names = list(class_names)
    if present_only:
        keep = np.flatnonzero((matrix.sum(axis=0) + matrix.sum(axis=1)) > 0)
        if keep.size:
            matrix = matrix[np.ix_(keep, keep)]
            names = [names[k] for k in keep]
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    size = max(4.5, 0.4 * len(names) + 2.5)
    figure = new_figure(size + 1.0, size)
    axes = figure.add_subplot()
    image = axes.imshow(normalised, cmap="viridis", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize=8)
    axes.set_yticks(ticks, names, fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("ground-truth class")
    axes.set_title("Confusion matrix (each row sums to 1)")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the row's pixels")
    return figure


def save_confusion_matrix(matrix, class_names, path):
    """Writes `plot_confusion_matrix(matrix, class_names)` to `path` (PNG)."""
    return save_figure(plot_confusion_matrix(matrix, class_names), path)


def plot_training_curves(history_csv, monitor=None):
    """Per-epoch training/validation loss and validation mIoU from a `history.csv`.

    Args:
        history_csv: the CSV that `danet_keras.train` writes.
        monitor: the mIoU column; default the first column ending in
            `mean_iou` that starts with `val_`.

    Returns:
        A matplotlib `Figure`.
    """
    import csv

    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    if monitor is None:
        columns = rows[0].keys() if rows else ()
        monitor = next(
            (c for c in columns if c.startswith("val_") and c.endswith("mean_iou")), None
        )

    def column(name):
        return [float(row[name]) for row in rows if row.get(name) not in (None, "")]

    figure = new_figure(10, 4)
    loss_axes, iou_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, column("loss"), marker="o", label="training")
    if column("val_loss"):
        validation = column("val_loss")
        loss_axes.plot(epochs[: len(validation)], validation, marker="o", label="validation")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss (sum of the outputs' cross entropies)")
    loss_axes.set_title("Loss")
    loss_axes.legend()
    if monitor and column(monitor):
        values = column(monitor)
        iou_axes.plot(epochs[: len(values)], values, marker="o", color="tab:green")
    iou_axes.set_xlabel("epoch")
    iou_axes.set_ylabel("validation mIoU")
    iou_axes.set_ylim(0, 1)
    iou_axes.set_title("Validation mean IoU")
    return figure
