"""Matplotlib figures: overlays, attention, confusion matrix, training curves.

    figure = plot_overlays(images, labels, predictions, palette="cityscapes")
    figure = plot_position_attention(model, image, [(60, 100)], palette="cityscapes")
    figure = plot_channel_attention(model, image, channels=4, palette="cityscapes")
    figure = plot_confusion_matrix(matrix, class_names)  # a matplotlib Figure
    save_figure(figure, "confusion_matrix.png")

`plot_*` functions return matplotlib figures, which a notebook shows inline
and `save_figure` writes. Every figure that shows classes takes
`class_names` and `palette`: a dataset name as `palette` (e.g.
`"cityscapes"`) gives both; without names, classes are called `class_0`,
`class_1`, ...; without a palette, they get the PASCAL VOC colour map (see
`danet_keras.data.classes.class_names_and_palette`).

Built on `matplotlib.figure.Figure`, not pyplot: a library should not keep
figures alive in pyplot's global state.
"""

import csv
import math

import matplotlib.patheffects as effects
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from danet_keras.data.classes import class_names_and_palette
from danet_keras.data.registry import IGNORE_INDEX
from danet_keras.inference.attention_maps import channel_attention_maps, position_attention_maps
from danet_keras.utils.atomic_io import atomic_path
from danet_keras.visualize.colours import classes_present, overlay


def new_figure(width, height):
    """A matplotlib `Figure` of `width` x `height` inches with a canvas attached."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path, dpi=120):
    """Writes `figure` as a PNG (written to a temporary name, then renamed into place)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")
    return path


def heat_map_overlay(image, values, alpha=0.6):
    """A [0, 1] map (H, W) in matplotlib's `inferno` colours blended over a uint8 image."""
    colours = colormaps["inferno"](values)[..., :3] * 255.0
    mixed = alpha * colours + (1.0 - alpha) * np.asarray(image, np.float32)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def plot_confusion_matrix(matrix, class_names=None, present_only=True):
    """The row-normalised confusion matrix (recall per class).

    Args:
        matrix: (K, K) counts, rows ground truth.
        class_names: K names; None: `class_0` ... `class_{K-1}`.
        present_only: show only the classes that occur in the ground truth
            or the predictions (a demo city has 10 of Cityscapes' 19).

    Returns:
        A matplotlib `Figure`.
    """
    matrix = np.asarray(matrix, np.float64)
    names, _ = class_names_and_palette(len(matrix), class_names)
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


# === Segmentation and attention figures ===

PANEL_WIDTH = 3.6  # inches per image panel; the README shows figures about 900 px wide


def _batch(array, ndim):
    array = np.asarray(array)
    return array[None] if array.ndim == ndim - 1 else array


def _panel_grid(figure, count, columns):
    """`count` axes in rows of `columns`; the unused ones of the last row hidden."""
    rows = math.ceil(count / columns)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for unused in axes[count:]:
        unused.set_axis_off()
    return axes[:count]


def _image_axes(axes, image, title):
    axes.imshow(np.asarray(image).astype(np.uint8), interpolation="nearest")
    axes.set_title(title, fontsize=10)
    axes.set_axis_off()


def add_class_legend(figure, class_ids, class_names, colours):
    """A legend of the given classes (a colour patch and the name each) below the figure's panels.

    Args:
        figure: a `Figure` with constrained layout (see `new_figure`).
        class_ids: the classes to list, in order.
        class_names: the names of all classes.
        colours: (K, 3) uint8 colours of all classes.

    Returns:
        The matplotlib `Legend`, or None without classes.
    """
    handles = [
        Patch(facecolor=np.asarray(colours[k]) / 255.0, edgecolor="0.3", label=class_names[k])
        for k in class_ids
    ]
    if not handles:
        return None
    return figure.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 6),
        frameon=False,
        fontsize=9,
        handlelength=1.2,
        columnspacing=1.2,
    )


def _mark_point(axes, y, x, number):
    """A ring on pixel (y, x) and its number beside it; the ring's gid names the point."""
    axes.plot(
        [x],
        [y],
        marker="o",
        markersize=11,
        markerfacecolor="none",
        markeredgecolor="cyan",
        markeredgewidth=2.2,
        linestyle="none",
        gid=f"attention_point_{number}",
    )
    label = axes.annotate(
        str(number),
        (x, y),
        xytext=(7, 7),
        textcoords="offset points",
        color="cyan",
        fontsize=10,
        fontweight="bold",
    )
    label.set_path_effects([effects.withStroke(linewidth=2.5, foreground="black")])


def _heat_map_axes(figure, axes, image, values, alpha, colour_label, log_scale=False):
    """`values` (H, W) over the image in `inferno`, with its colour scale beside the panel.

    The scale runs from min(0, smallest) to the largest value, or with
    `log_scale` logarithmically over the three decades below the largest.
    """
    axes.imshow(np.asarray(image).astype(np.uint8), interpolation="nearest")
    low, high = float(np.min(values)), float(np.max(values))
    if log_scale:
        high = max(high, 1e-30)
        norm = LogNorm(vmin=high * 1e-3, vmax=high, clip=True)
    else:
        norm = Normalize(vmin=min(low, 0.0), vmax=high if high > low else low + 1e-12)
    heat = axes.imshow(values, cmap="inferno", alpha=alpha, norm=norm, interpolation="bilinear")
    axes.set_axis_off()
    bar = figure.colorbar(heat, cax=_colour_bar_axes(axes))
    bar.set_label(colour_label, fontsize=9)
    bar.ax.tick_params(labelsize=8)
    if not log_scale:
        bar.formatter.set_powerlimits((-2, 3))
    return heat


def _colour_bar_axes(axes):
    """A slim axes right of an image panel, exactly as tall as the image (an inset axes
    follows the panel's aspect-locked box, where a layout-placed colour bar would not)."""
    return axes.inset_axes([1.03, 0.0, 0.045, 1.0])


def _reserve_colour_bar_space(axes):
    """An invisible stand-in for a colour bar, so that a panel without one has the same size."""
    spacer = _colour_bar_axes(axes)
    spacer.set_xticks([])
    spacer.set_yticks([0.0], ["0.00"], fontsize=8)
    spacer.set_ylabel("x", fontsize=9)
    spacer.yaxis.set_label_position("right")
    spacer.yaxis.tick_right()
    for artist in [spacer.patch, *spacer.spines.values(), *spacer.get_yticklabels()]:
        artist.set_alpha(0.0)
    spacer.yaxis.label.set_alpha(0.0)
    spacer.tick_params(colors=(0, 0, 0, 0))


def _columns(count, columns):
    """Panels per row: as asked, else one row of up to 3, a 2x2 grid for 4, rows of 3 beyond."""
    if columns is None:
        columns = 2 if count == 4 else 3
    return max(1, min(int(columns), count))


def _figure_for_panels(count, columns, image_size, extra_height=0.0, colour_bars=False):
    """A figure for `count` image panels of aspect `image_size` in rows of `columns`."""
    height, width = image_size
    # A colour bar and its labels take about 0.8 inch of a panel's width.
    panel_height = (PANEL_WIDTH - (0.8 if colour_bars else 0.1)) * height / width
    rows = math.ceil(count / columns)
    return new_figure(columns * PANEL_WIDTH, rows * (panel_height + 0.45) + extra_height)


def plot_overlays(
    images,
    labels=None,
    predictions=None,
    class_names=None,
    palette=None,
    titles=None,
    alpha=0.5,
    ignore_index=IGNORE_INDEX,
):
    """Images with their ground truth and/or prediction tinted in, titled, with a class legend.

    One row per image: the image, then the ground truth (if `labels`), then
    the prediction (if `predictions`; titled with its pixel accuracy when
    both are given). The legend below lists the classes present in the
    shown maps.

    Args:
        images: (H, W, 3) or (B, H, W, 3), uint8 or float in [0, 255].
        labels: None, (H, W) or (B, H, W) train ids (`ignore_index` is
            left untinted).
        predictions: None, (H, W) or (B, H, W) class ids.
        class_names: K names; see `class_names_and_palette`.
        palette: a dataset name (names and colours), a (K, 3) array or None.
        titles: None, or one title per image for its first panel.
        alpha: weight of the class colours.
        ignore_index: the label value that is no class.

    Returns:
        A matplotlib `Figure`.
    """
    images = _batch(images, 4)
    maps = {
        name: _batch(values, 3)
        for name, values in (("ground truth", labels), ("prediction", predictions))
        if values is not None
    }
    num_classes = None
    if class_names is None and palette is None:
        num_classes = 1 + max(
            (
                k
                for m in maps.values()
                for k in classes_present(m, np.iinfo(np.int32).max, ignore_index)
            ),
            default=0,
        )
    names, colours = class_names_and_palette(num_classes, class_names, palette)
    for name, values in maps.items():
        if len(values) != len(images):
            raise ValueError(f"{len(images)} images but {len(values)} {name} maps.")
    columns = 1 + len(maps)
    figure = _figure_for_panels(len(images) * columns, columns, images.shape[1:3], 0.4)
    axes = _panel_grid(figure, len(images) * columns, columns).reshape(len(images), columns)
    for row, image in enumerate(images):
        title = "image" if titles is None else str(titles[row])
        _image_axes(axes[row, 0], image, title)
        for column, (name, values) in enumerate(maps.items(), start=1):
            title = name
            if name == "prediction" and "ground truth" in maps:
                truth = maps["ground truth"][row]
                scored = truth != ignore_index
                if scored.any():
                    accuracy = np.mean(values[row][scored] == truth[scored])
                    title = f"prediction (pixel accuracy {100 * accuracy:.1f}%)"
            shown = overlay(image, values[row], colours, alpha, ignore_index)
            _image_axes(axes[row, column], shown, title)
    add_class_legend(
        figure, classes_present(list(maps.values()), len(names), ignore_index), names, colours
    )
    return figure


def _attention_figure(model, image, maps, count, class_names, palette, columns, first_title):
    """The frame of an attention figure: the prediction in the first of `count` + 1 panels
    (with a colour bar's room, so that every panel has the same size) and a legend of the
    predicted classes.

    Returns:
        `(figure, axes, class names)`: the remaining `count` axes are `axes[1:]`.
    """
    names, colours = class_names_and_palette(None, class_names, palette, model=model)
    columns = _columns(count + 1, columns)
    figure = _figure_for_panels(count + 1, columns, maps.image_size, 0.8, colour_bars=True)
    axes = _panel_grid(figure, count + 1, columns)
    _image_axes(axes[0], overlay(image, maps.class_ids, colours, 0.45), first_title)
    _reserve_colour_bar_space(axes[0])
    add_class_legend(figure, classes_present([maps.class_ids], len(names)), names, colours)
    return figure, axes, names


def plot_position_attention(
    model, image, points, class_names=None, palette=None, alpha=0.65, columns=None, log_scale=False
):
    """The paper's attention figure: where the position attention of each chosen pixel looks.

    The first panel shows the prediction with the points marked and
    numbered; each further panel shows one point's attention weights over
    the image (its feature cell's softmax over all positions, upsampled) with
    the point marked, a colour scale, and a title naming the point and its
    predicted class. The legend lists the predicted classes.

    Args:
        model: a `DANet` with position attention.
        image: uint8 RGB (H, W, 3).
        points: (y, x) pixels.
        class_names: K names; see `class_names_and_palette`.
        palette: a dataset name (names and colours), a (K, 3) array or None.
        alpha: opacity of the heat maps over the image.
        columns: panels per row; None: one row of up to 3 panels, 2x2 for 4,
            rows of 3 beyond.
        log_scale: colour the weights on a logarithmic scale (three decades
            below each map's largest weight), which shows where the rest of
            the attention goes when a few positions take most of it.

    Returns:
        A matplotlib `Figure`.
    """
    maps = position_attention_maps(model, image, points)
    figure, axes, names = _attention_figure(
        model, image, maps, len(maps.points), class_names, palette, columns, "prediction and points"
    )
    weights = maps.upsampled()
    for number, (y, x) in enumerate(maps.points, start=1):
        _mark_point(axes[0], y, x, number)
    rows, cells = maps.weights.shape[1:]
    for number, ((y, x), predicted, values, panel) in enumerate(
        zip(maps.points, maps.predicted_classes(), weights, axes[1:]), start=1
    ):
        label = "attention weight" + (" (log scale)" if log_scale else "")
        _heat_map_axes(figure, panel, image, values, alpha, label, log_scale)
        _mark_point(panel, y, x, number)
        panel.set_title(f"point {number} (y={y}, x={x}): {names[predicted]}", fontsize=10)
    figure.suptitle(
        f"Position attention (gamma = {maps.gamma:.3g}): each point's weights\n"
        f"over the {rows}x{cells} feature cells, which sum to 1",
        fontsize=11,
        wrap=True,
    )
    return figure


def plot_channel_attention(
    model, image, channels=3, class_names=None, palette=None, alpha=0.65, columns=None
):
    """Channels of the channel attention's output over the image (the paper's Fig. 4 columns).

    The first panel shows the prediction; each further panel shows one
    channel of the CAM module's output E (upsampled) with a colour scale,
    titled with the predicted class on which the channel is strongest on
    average. The legend lists the predicted classes.

    Args:
        model: a `DANet` with channel attention.
        image: uint8 RGB (H, W, 3).
        channels: channel indices, or an int k for the k channels that vary
            most over the image (see `attention_maps.channel_attention_maps`).
        class_names: K names; see `class_names_and_palette`.
        palette: a dataset name (names and colours), a (K, 3) array or None.
        alpha: opacity of the heat maps over the image.
        columns: panels per row; None: one row of up to 3 panels, 2x2 for 4,
            rows of 3 beyond.

    Returns:
        A matplotlib `Figure`.
    """
    maps = channel_attention_maps(model, image, channels)
    figure, axes, names = _attention_figure(
        model, image, maps, len(maps.channels), class_names, palette, columns, "prediction"
    )
    present = classes_present([maps.class_ids], len(names))
    for channel, values, panel in zip(maps.channels, maps.upsampled(), axes[1:]):
        _heat_map_axes(figure, panel, image, values, alpha, "activation")
        means = {k: float(values[maps.class_ids == k].mean()) for k in present}
        strongest = max(means, key=means.get)
        panel.set_title(f"channel {channel}: strongest on {names[strongest]}", fontsize=10)
    figure.suptitle(
        f"Channel attention (beta = {maps.beta:.3g}): output channels of the CAM module",
        fontsize=11,
        wrap=True,
    )
    return figure
