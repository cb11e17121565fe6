"""Mean intersection-over-union for semantic segmentation.

The metric accumulates a confusion matrix of integer pixel counts. Counts add
up exactly, so under any `tf.distribute` strategy the per-replica matrices sum
(the variable is a sum-aggregated, on-read synchronised metric variable) to
the matrix of the whole evaluation set, and the mean IoU computed from it is
the benchmark figure, not a mean of per-batch or per-replica figures.
"""

import keras
from keras import ops


def _labels_from_predictions(y_true, y_pred):
    """Label maps of `y_pred` (argmax when it holds one score per class)."""
    if len(y_pred.shape) == len(y_true.shape) + 1:
        if y_pred.shape[-1] == 1:
            return ops.squeeze(y_pred, axis=-1)
        return ops.argmax(y_pred, axis=-1)
    return y_pred


@keras.saving.register_keras_serializable(package="danet_keras")
class MeanIoU(keras.metrics.Metric):
    """Mean IoU, per-class IoU and pixel accuracy from a confusion matrix.

    IoU of class c = TP_c / (TP_c + FP_c + FN_c). The mean is taken over the
    classes that occur in the ground truth or in the prediction of the
    accumulated pixels: a class absent from both has no defined IoU and is
    left out of the mean (its per-class IoU is NaN). A class that is predicted
    but absent from the ground truth counts with IoU 0. This is the convention
    of `keras.metrics.MeanIoU`, mmsegmentation and the Cityscapes scripts.

    Pixels whose label is `ignore_index` or outside `[0, num_classes)` are not
    counted, nor are predictions outside that range.

    Args:
        num_classes: number of classes K.
        ignore_index: label value that marks pixels to ignore (255, the
            Cityscapes/ADE20K/VOC convention); None counts every in-range
            label.
        name: metric name, e.g. in `model.fit` logs.
        dtype: dtype of the results (the counts are int64).

    Call arguments (`update_state`):
        y_true: integer labels, (B, H, W) or (B, H, W, 1).
        y_pred: logits or probabilities (B, H, W, K), or predicted labels of
            the same shape as `y_true`.
        sample_weight: optional integer weight of each pixel, broadcastable
            to `y_true` (0 masks a pixel).

    Example:

    ```python
    metric = danet_keras.metrics.MeanIoU(num_classes=19)
    metric.update_state(labels, model(images)["logits"])
    metric.result()  # mean IoU
    metric.per_class_iou()  # (19,), NaN for classes never seen
    ```
    """

    def __init__(self, num_classes, ignore_index=255, name="mean_iou", dtype="float32", **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be an integer >= 1, got {num_classes!r}.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # Higher is better (ModelCheckpoint / EarlyStopping with mode="auto").
        self._direction = "up"
        self.total_confusion_matrix = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="int64",
            aggregation="sum",
            name="total_confusion_matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == 4 and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        y_pred = ops.cast(_labels_from_predictions(y_true, y_pred), "int64")
        y_true = ops.cast(y_true, "int64")
        k = self.num_classes
        valid = (y_true >= 0) & (y_true < k) & (y_pred >= 0) & (y_pred < k)
        if self.ignore_index is not None:
            valid = valid & (y_true != self.ignore_index)
        weights = ops.cast(valid, "int64")
        if sample_weight is not None:
            weights = weights * ops.cast(ops.convert_to_tensor(sample_weight), "int64")
        weights = ops.reshape(ops.broadcast_to(weights, ops.shape(y_true)), (-1,))
        valid = ops.reshape(valid, (-1,))
        y_true = ops.reshape(y_true, (-1,))
        y_pred = ops.reshape(y_pred, (-1,))
        # Invalid pixels get index 0 and weight 0.
        index = ops.where(valid, y_true * k + y_pred, ops.zeros_like(y_true))
        # A segment sum rather than `bincount`, which XLA cannot compile (`jit_compile=True`).
        counts = ops.segment_sum(weights, index, num_segments=k * k)
        self.total_confusion_matrix.assign_add(ops.reshape(ops.cast(counts, "int64"), (k, k)))

    def confusion_matrix(self):
        """(K, K) int64 pixel counts: rows are ground truth, columns predictions."""
        return ops.copy(self.total_confusion_matrix)

    def _intersection_union(self):
        matrix = ops.cast(self.confusion_matrix(), "float64")
        intersection = ops.diagonal(matrix)
        union = ops.sum(matrix, axis=0) + ops.sum(matrix, axis=1) - intersection
        return intersection, union

    def per_class_iou(self):
        """(K,) IoU of each class; NaN for a class absent from ground truth and prediction."""
        intersection, union = self._intersection_union()
        iou = ops.where(union > 0, intersection / ops.maximum(union, 1.0), float("nan"))
        return ops.cast(iou, self.dtype)

    def result(self):
        intersection, union = self._intersection_union()
        present = union > 0
        iou = ops.where(present, intersection / ops.maximum(union, 1.0), 0.0)
        mean = ops.sum(iou) / ops.maximum(ops.sum(ops.cast(present, "float64")), 1.0)
        return ops.cast(mean, self.dtype)

    def pixel_accuracy(self):
        """Fraction of counted pixels whose prediction equals the ground truth."""
        matrix = ops.cast(self.confusion_matrix(), "float64")
        return ops.cast(ops.trace(matrix) / ops.maximum(ops.sum(matrix), 1.0), self.dtype)

    def reset_state(self):
        self.total_confusion_matrix.assign(ops.zeros((self.num_classes,) * 2, dtype="int64"))

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "ignore_index": self.ignore_index})
        return config
