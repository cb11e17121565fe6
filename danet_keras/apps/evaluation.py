"""The mIoU evaluation loop over a dataset, its result, and the files it writes.

`evaluate` runs one of the inference strategies of `danet_keras.inference`
(plain, sliding window, multi-scale + flip) over a dataset of full-resolution
`(images, labels)` batches, accumulates `danet_keras.metrics.MeanIoU` and
writes the per-class table (JSON, CSV) and a confusion-matrix plot
(`danet_keras.visualize.plot_confusion_matrix`).
"""

import csv
import dataclasses
import io
import math
import os
import sys

import numpy as np
from tqdm.auto import tqdm

from danet_keras.data.classes import fallback_class_names
from danet_keras.inference.strategies import multi_scale_logits, resize_logits
from danet_keras.metrics import MeanIoU
from danet_keras.utils.atomic_io import write_json, write_text
from danet_keras.utils.output_paths import check_files, check_output_folder, record_files
from danet_keras.visualize import save_confusion_matrix

EVALUATION_KIND = "evaluation_report"


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


def evaluation_paths(output_dir):
    """The files `save_evaluation` writes in `output_dir`: {"json", "csv", "confusion_matrix"}."""
    return {
        "json": os.path.join(output_dir, "metrics.json"),
        "csv": os.path.join(output_dir, "per_class_iou.csv"),
        "confusion_matrix": os.path.join(output_dir, "confusion_matrix.png"),
    }


def check_evaluation_output(output_dir, overwrite=False, inputs=()):
    """Refuses an `output_dir` whose reports `save_evaluation` may not write (`output_paths`)."""
    check_output_folder(output_dir, inputs)
    check_files(list(evaluation_paths(output_dir).values()), EVALUATION_KIND, overwrite, inputs)


def save_evaluation(result, output_dir, overwrite=False):
    """Writes `metrics.json`, `per_class_iou.csv` and `confusion_matrix.png`.

    Args:
        result: an `EvaluationResult`.
        output_dir: directory (created); not the current folder.
        overwrite: replace reports that danet-keras wrote there earlier
            (other files are never replaced).

    Returns:
        Dict {"json", "csv", "confusion_matrix"} of the written paths.
    """
    check_evaluation_output(output_dir, overwrite)
    os.makedirs(output_dir, exist_ok=True)
    paths = evaluation_paths(output_dir)
    write_json(paths["json"], result.to_dict())
    gt_pixels = result.confusion_matrix.sum(axis=1)
    predicted_pixels = result.confusion_matrix.sum(axis=0)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
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
    write_text(paths["csv"], table.getvalue())
    save_confusion_matrix(result.confusion_matrix, result.class_names, paths["confusion_matrix"])
    record_files(list(paths.values()), EVALUATION_KIND)
    return paths


def _num_batches(dataset, steps=None):
    """The batches an evaluation will run: `steps`, or the dataset's length when known."""
    try:
        length = len(dataset)
    except TypeError:  # a generator, or a tf.data pipeline of unknown cardinality
        length = None
    if steps is None:
        return length
    return steps if length is None else min(steps, length)


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
    overwrite=False,
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
        class_names: K names for the table; default the model's own
            (`DANet.class_names`), else "class_0", ...
        steps: evaluate only this many batches.
        output_dir: when given, write the JSON/CSV table and the
            confusion-matrix PNG there (checked before evaluating: see
            `save_evaluation`).
        verbose: show a progress bar (batches done of the total, elapsed
            time and ETA, the running mIoU) and print the table.
        overwrite: replace reports that danet-keras wrote in `output_dir`.

    Returns:
        An `EvaluationResult`.
    """
    if output_dir is not None:
        check_evaluation_output(output_dir, overwrite)
    num_classes = num_classes or getattr(model, "num_classes", None)
    if not num_classes:
        raise ValueError("`num_classes` is needed when the model does not define `num_classes`.")
    if class_names is None:
        class_names = getattr(model, "class_names", None) or fallback_class_names(num_classes)
    class_names = tuple(class_names)
    if len(class_names) != num_classes:
        raise ValueError(f"`class_names` has {len(class_names)} names for {num_classes} classes.")
    metric = MeanIoU(num_classes, ignore_index=ignore_index)
    num_images = 0
    # On stdout, beside Keras' own progress bars (fit, evaluate): stderr stays for problems.
    progress = tqdm(
        total=_num_batches(dataset, steps),
        desc="evaluate",
        unit="batch",
        disable=not verbose,
        file=sys.stdout,
    )
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
        progress.update()
        progress.set_postfix(images=num_images, mIoU=f"{float(metric.result()):.4f}")
    progress.close()
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
        paths = save_evaluation(result, output_dir, overwrite)
        if verbose:
            print("wrote " + ", ".join(paths.values()))
    return result
