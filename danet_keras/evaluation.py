"""Inference as the benchmarks evaluate it, and the mIoU evaluation loop.

Three ways to turn an image into logits at its full resolution, composable:

- plain: one forward pass on the whole image;
- sliding window (`sliding_window_logits`): crops of `crop_size` at `stride`
  (the official code evaluates 1024x2048 Cityscapes images with 768 crops at
  stride 512); overlapping logits are averaged;
- multi-scale + flip (`multi_scale_logits`): the image resized by each scale
  (1.0 = its own resolution), optionally also mirrored, each run plainly or by
  sliding window, the logits resized back and averaged.

With the scale list [1.0], no flip and a window that covers the whole image,
all three give exactly the plain logits. Averaging logits (not
probabilities) follows the official code.

`evaluate` runs one of them over a dataset of full-resolution `(images,
labels)` batches, accumulates `danet_keras.metrics.MeanIoU` and writes the
per-class table (JSON, CSV) and a confusion-matrix plot.
"""

import csv
import dataclasses
import json
import math
import os
import weakref

import numpy as np

# Scales of the official multi-scale evaluation (Cityscapes val 81.50 with flip).
PAPER_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.2)

_LOGITS_FUNCTIONS = weakref.WeakKeyDictionary()


def _select_logits(outputs):
    return outputs["logits"] if isinstance(outputs, dict) else outputs


def logits_function(model):
    """A compiled callable `images (B, H, W, 3) -> logits (B, H, W, K)` for `model`.

    Args:
        model: a `keras.Model` (e.g. `DANet`, whose `"logits"` output is used)
            or any callable returning logits or a dict with `"logits"`.

    Returns:
        A callable; for a Keras model a `tf.function` in inference mode, cached
        per model so that repeated calls with a seen shape do not retrace.
    """
    import keras
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        return lambda images: _select_logits(model(images))
    if model not in _LOGITS_FUNCTIONS:
        # One trace per input shape: crops and images of a dataset share a few sizes.
        _LOGITS_FUNCTIONS[model] = tf.function(
            lambda images: _select_logits(model(images, training=False))
        )
    return _LOGITS_FUNCTIONS[model]


def _pair(value, name):
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise ValueError(f"`{name}` must be a positive integer or (height, width), got {value!r}.")
    return int(pair[0]), int(pair[1])


def window_starts(size, window, stride):
    """Start offsets of windows of length `window` covering [0, size) with `stride`.

    The last window is shifted back to end at `size` (mmsegmentation's rule),
    so every window lies inside the image.

    Args:
        size: image length along an axis.
        window: window length (<= size).
        stride: step between starts.

    Returns:
        A list of starts.
    """
    count = max(math.ceil((size - window) / stride), 0) + 1
    return sorted({min(i * stride, size - window) for i in range(count)})


def sliding_window_logits(model, images, crop_size, stride=None):
    """Logits of full images from overlapping crops.

    A window is `crop_size` clipped to the image, so an image no larger than
    the crop is one window (plain inference), never padded.

    Args:
        model: see `logits_function`.
        images: (B, H, W, 3) images in [0, 255] (array or tensor).
        crop_size: window size, an int or (height, width).
        stride: step between windows, an int or (height, width); default
            2/3 of the crop (the official 768 / 512).

    Returns:
        (B, H, W, K) float32 NumPy array: every pixel's logits averaged over
        the windows that contain it.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"`images` must be (B, H, W, 3), got shape {images.shape}.")
    crop_h, crop_w = _pair(crop_size, "crop_size")
    if stride is None:
        stride = (max(1, round(crop_h * 2 / 3)), max(1, round(crop_w * 2 / 3)))
    stride_h, stride_w = _pair(stride, "stride")
    _, height, width, _ = images.shape
    crop_h, crop_w = min(crop_h, height), min(crop_w, width)
    predict = logits_function(model)
    total, counts = None, np.zeros((height, width, 1), np.float32)
    for top in window_starts(height, crop_h, stride_h):
        for left in window_starts(width, crop_w, stride_w):
            window = images[:, top : top + crop_h, left : left + crop_w]
            logits = np.asarray(predict(window), dtype=np.float32)
            if total is None:
                total = np.zeros(images.shape[:3] + logits.shape[-1:], np.float32)
            total[:, top : top + crop_h, left : left + crop_w] += logits
            counts[top : top + crop_h, left : left + crop_w] += 1.0
    return total / counts


def resize_logits(logits, size, align_corners=False):
    """Bilinearly resizes (B, h, w, K) logits to `size` = (H, W); NumPy in, NumPy out."""
    from danet_keras.layers.resize import bilinear_resize

    if tuple(logits.shape[1:3]) == tuple(size):
        return logits
    return np.asarray(bilinear_resize(np.asarray(logits, np.float32), size, align_corners))


def multi_scale_logits(
    model, images, scales=(1.0,), flip=False, crop_size=None, stride=None, align_corners=None
):
    """Logits averaged over rescaled (and mirrored) copies of the images.

    Args:
        model: see `logits_function`.
        images: (B, H, W, 3) images in [0, 255].
        scales: resize factors relative to the image's own size;
            `PAPER_SCALES` for the official multi-scale evaluation.
        flip: also run each scale on the horizontally mirrored image.
        crop_size: None for plain inference at each scale, or the sliding
            window crop (see `sliding_window_logits`).
        stride: sliding-window stride.
        align_corners: convention for resizing logits back; default the
            model's own (`model.align_corners`), else False.

    Returns:
        (B, H, W, K) float32 NumPy array.
    """
    from danet_keras.layers.resize import bilinear_resize

    images = np.asarray(images, dtype=np.float32)
    scales = tuple(float(s) for s in scales)
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"`scales` must be a non-empty list of positive factors, got {scales!r}.")
    if align_corners is None:
        align_corners = bool(getattr(model, "align_corners", False))
    height, width = images.shape[1:3]

    def infer(batch):
        if crop_size is None:
            return np.asarray(logits_function(model)(batch), dtype=np.float32)
        return sliding_window_logits(model, batch, crop_size, stride)

    total = None
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        # Images are resized with half-pixel centres, as PIL / cv2 do in the official loaders.
        scaled = images if size == (height, width) else np.asarray(bilinear_resize(images, size))
        logits = infer(scaled)
        if flip:
            logits = (logits + infer(np.ascontiguousarray(scaled[:, :, ::-1]))[:, :, ::-1]) / 2.0
        logits = resize_logits(logits, (height, width), align_corners)
        total = logits if total is None else total + logits
    return total / len(scales)


@dataclasses.dataclass
class EvaluationResult:
    """Scores of one evaluation.

    Attributes:
        mean_iou: mean IoU over the classes present in ground truth or
            prediction.
        pixel_accuracy: fraction of counted pixels predicted correctly.
        per_class_iou: (K,) IoU per class, NaN where a class never occurs.
        confusion_matrix: (K, K) int64 counts, rows ground truth.
        class_names: K names.
        num_images: images evaluated.
        settings: how the logits were computed (scales, flip, crop, stride).
    """

    mean_iou: float
    pixel_accuracy: float
    per_class_iou: np.ndarray
    confusion_matrix: np.ndarray
    class_names: tuple
    num_images: int
    settings: dict

    def to_dict(self):
        """JSON-ready dict (NaN IoUs become None)."""
        return {
            "mean_iou": self.mean_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class_iou": {
                name: (None if math.isnan(v) else float(v))
                for name, v in zip(self.class_names, self.per_class_iou)
            },
            "num_images": self.num_images,
            "settings": self.settings,
            "confusion_matrix": self.confusion_matrix.tolist(),
        }

    def table(self):
        """The per-class IoU table as text."""
        width = max([len("pixel acc.")] + [len(n) for n in self.class_names])
        gt_pixels = self.confusion_matrix.sum(axis=1)
        lines = [f"{'class':<{width}}  {'IoU':>7}  {'GT pixels':>12}", "-" * (width + 23)]
        for name, iou, pixels in zip(self.class_names, self.per_class_iou, gt_pixels):
            iou_text = "    n/a" if math.isnan(iou) else f"{100 * iou:7.2f}"
            lines.append(f"{name:<{width}}  {iou_text}  {int(pixels):>12,}")
        lines.append("-" * (width + 23))
        lines.append(f"{'mean IoU':<{width}}  {100 * self.mean_iou:7.2f}")
        lines.append(f"{'pixel acc.':<{width}}  {100 * self.pixel_accuracy:7.2f}")
        return "\n".join(lines)


def plot_confusion_matrix(matrix, class_names, path):
    """Writes the row-normalised confusion matrix (recall per class) as a PNG.

    Args:
        matrix: (K, K) counts, rows ground truth.
        class_names: K names.
        path: output `.png` path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, np.float64)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    size = max(4.0, 0.35 * len(class_names) + 2.0)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(normalised, cmap="viridis", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, class_names, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("ground truth")
    axes.set_title("confusion matrix (rows normalised)")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def save_evaluation(result, output_dir):
    """Writes `metrics.json`, `per_class_iou.csv` and `confusion_matrix.png`.

    Args:
        result: an `EvaluationResult`.
        output_dir: directory (created).

    Returns:
        Dict {"json", "csv", "confusion_matrix"} of the written paths.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, "metrics.json"),
        "csv": os.path.join(output_dir, "per_class_iou.csv"),
        "confusion_matrix": os.path.join(output_dir, "confusion_matrix.png"),
    }
    with open(paths["json"], "w") as f:
        json.dump(result.to_dict(), f, indent=2)
    gt_pixels = result.confusion_matrix.sum(axis=1)
    predicted_pixels = result.confusion_matrix.sum(axis=0)
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_id", "class", "iou", "gt_pixels", "predicted_pixels"])
        for index, name in enumerate(result.class_names):
            iou = result.per_class_iou[index]
            writer.writerow(
                [
                    index,
                    name,
                    "" if math.isnan(iou) else f"{iou:.6f}",
                    int(gt_pixels[index]),
                    int(predicted_pixels[index]),
                ]
            )
    plot_confusion_matrix(result.confusion_matrix, result.class_names, paths["confusion_matrix"])
    return paths


def evaluate(
    model,
    dataset,
    num_classes=None,
    scales=(1.0,),
    flip=False,
    crop_size=None,
    stride=None,
    ignore_index=255,
    class_names=None,
    steps=None,
    output_dir=None,
    verbose=True,
):
    """mIoU of `model` on `dataset` at the labels' full resolution.

    Args:
        model: a `DANet` (or a callable, see `logits_function`).
        dataset: iterable of `(images, labels)` batches: images (B, H, W, 3)
            in [0, 255], labels (B, H', W') int; logits are resized to the
            labels' size when it differs from the images'.
        num_classes: K; default `model.num_classes`.
        scales: see `multi_scale_logits` (`PAPER_SCALES` for the paper's).
        flip: add horizontally flipped inference.
        crop_size: None (whole image) or the sliding-window crop.
        stride: sliding-window stride (default 2/3 crop).
        ignore_index: label not counted.
        class_names: K names for the table (default "class_0", ...).
        steps: evaluate only this many batches.
        output_dir: when given, write the JSON/CSV table and the
            confusion-matrix PNG there.
        verbose: print progress and the table.

    Returns:
        An `EvaluationResult`.
    """
    from danet_keras.metrics import MeanIoU

    num_classes = num_classes or getattr(model, "num_classes", None)
    if not num_classes:
        raise ValueError("`num_classes` is needed when the model does not define `num_classes`.")
    class_names = (
        tuple(class_names)
        if class_names is not None
        else tuple(f"class_{k}" for k in range(num_classes))
    )
    if len(class_names) != num_classes:
        raise ValueError(f"`class_names` has {len(class_names)} names for {num_classes} classes.")
    metric = MeanIoU(num_classes, ignore_index=ignore_index)
    num_images = 0
    for step, (images, labels) in enumerate(dataset):
        if steps is not None and step >= steps:
            break
        labels = np.asarray(labels)
        if labels.ndim == 4:
            labels = labels[..., 0]
        logits = multi_scale_logits(model, images, scales, flip, crop_size, stride)
        logits = resize_logits(
            logits, labels.shape[1:3], bool(getattr(model, "align_corners", False))
        )
        metric.update_state(labels, logits)
        num_images += labels.shape[0]
        if verbose:
            print(
                f"\revaluated {num_images} images, running mIoU {float(metric.result()):.4f}",
                end="",
                flush=True,
            )
    if verbose:
        print()
    if num_images == 0:
        raise ValueError("The evaluation dataset yielded no batches.")
    result = EvaluationResult(
        mean_iou=float(metric.result()),
        pixel_accuracy=float(metric.pixel_accuracy()),
        per_class_iou=np.asarray(metric.per_class_iou(), np.float64),
        confusion_matrix=np.asarray(metric.confusion_matrix()),
        class_names=class_names,
        num_images=num_images,
        settings={
            "scales": list(scales),
            "flip": bool(flip),
            "crop_size": crop_size
            if crop_size is None or np.isscalar(crop_size)
            else list(crop_size),
            "stride": stride if stride is None or np.isscalar(stride) else list(stride),
        },
    )
    if verbose:
        print(result.table())
    if output_dir is not None:
        paths = save_evaluation(result, output_dir)
        if verbose:
            print("wrote " + ", ".join(paths.values()))
    return result
