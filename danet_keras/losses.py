"""Pixel-wise cross entropy with an ignore label, class weights and OHEM.

DANet is trained with one cross-entropy term per output: the fused logits and,
as in the official code, the position-only and channel-only logits (weight
1.0 each); mmsegmentation adds its FCN auxiliary head with weight 0.4.
`segmentation_losses` builds the `loss` / `loss_weights` dicts that
`DANet.compile` gives Keras. (A DANet routes a plain label map to each of its
outputs itself; `with_output_labels` does it in a `tf.data` pipeline, for
code written before that.)

Below the models in the layers: `DANet.compile()` builds its default losses here.
"""

import keras
from keras import ops

# The official multi-loss (1.0 each) plus mmsegmentation's auxiliary head.
DEFAULT_LOSS_WEIGHTS = {
    "logits": 1.0,
    "position_logits": 1.0,
    "channel_logits": 1.0,
    "aux_logits": 0.4,
}


def _ohem_keep_mask(probabilities, labels, valid, threshold, min_kept):
    """Hard pixels kept by online hard example mining (mmsegmentation's rule).

    A valid pixel is kept when the predicted probability of its true class is
    below `threshold`; when fewer than `min_kept` pixels are that hard, the
    threshold rises to the `min_kept`-th smallest probability so that about
    `min_kept` pixels are kept.
    """
    true_probability = ops.take_along_axis(probabilities, ops.expand_dims(labels, -1), axis=-1)
    true_probability = ops.stop_gradient(ops.squeeze(true_probability, -1))
    flat = ops.reshape(ops.where(valid, true_probability, 2.0), (-1,))
    num_valid = ops.sum(ops.cast(valid, "int32"))
    kth = ops.maximum(ops.minimum(num_valid, min_kept) - 1, 0)
    kth_probability = ops.take(ops.sort(flat), kth)
    cut = ops.maximum(kth_probability, threshold)
    return valid & (true_probability < cut)


@keras.saving.register_keras_serializable(package="danet_keras")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Softmax cross entropy over pixels, averaged over the counted pixels.

    Matches PyTorch's `CrossEntropyLoss(ignore_index=..., weight=...)` with
    mean reduction: the loss is sum(w_i * ce_i) / sum(w_i) over the pixels
    that are not ignored, w_i being the class weight of pixel i's label (1
    without class weights) times its OHEM selection (1 without OHEM).

    Args:
        ignore_index: label of pixels that do not count (255); None counts
            all. Labels outside [0, K) are ignored too.
        class_weights: None or a sequence of K per-class weights.
        ohem_threshold: None (no OHEM) or the probability below which a pixel
            is hard (mmsegmentation's Cityscapes setting: 0.7).
        ohem_min_kept: with OHEM, the least number of pixels kept per batch
            (per replica under a distribution strategy).
        name: loss name.
        **kwargs: `keras.losses.Loss` arguments (`dtype`).

    Call arguments:
        y_true: (B, H, W) or (B, H, W, 1) integer labels.
        y_pred: (B, H, W, K) logits.

    Returns:
        A scalar loss.
    """

    def __init__(
        self,
        ignore_index=255,
        class_weights=None,
        ohem_threshold=None,
        ohem_min_kept=100000,
        name="segmentation_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if ohem_threshold is not None and not 0.0 < float(ohem_threshold) <= 1.0:
            raise ValueError(f"`ohem_threshold` must be in (0, 1], got {ohem_threshold!r}.")
        if int(ohem_min_kept) < 1:
            raise ValueError(f"`ohem_min_kept` must be >= 1, got {ohem_min_kept!r}.")
        self.ignore_index = ignore_index
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ohem_threshold = None if ohem_threshold is None else float(ohem_threshold)
        self.ohem_min_kept = int(ohem_min_kept)

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        num_classes = logits.shape[-1]
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(logits.shape):
            labels = ops.squeeze(labels, axis=-1)
        valid = (labels >= 0) & (labels < num_classes)
        if self.ignore_index is not None:
            valid = valid & (labels != self.ignore_index)
        safe_labels = ops.where(valid, labels, 0)

        if self.class_weights is not None:
            if len(self.class_weights) != num_classes:
                raise ValueError(
                    f"`class_weights` has {len(self.class_weights)} entries but the logits have "
                    f"{num_classes} classes."
                )
            weights = ops.take(ops.convert_to_tensor(self.class_weights, "float32"), safe_labels)
        else:
            weights = ops.ones_like(logits[..., 0])
        if self.ohem_threshold is not None:
            keep = _ohem_keep_mask(
                ops.softmax(logits, axis=-1),
                safe_labels,
                valid,
                self.ohem_threshold,
                self.ohem_min_kept,
            )
        else:
            keep = valid
        weights = weights * ops.cast(keep, "float32")

        pixel_losses = ops.sparse_categorical_crossentropy(safe_labels, logits, from_logits=True)
        total = ops.sum(pixel_losses * weights)
        # An all-ignored batch gives 0 (with zero gradients), not NaN.
        return total / ops.maximum(ops.sum(weights), 1e-12)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ignore_index": self.ignore_index,
                "class_weights": self.class_weights,
                "ohem_threshold": self.ohem_threshold,
                "ohem_min_kept": self.ohem_min_kept,
            }
        )
        return config


def segmentation_losses(output_names, loss_weights=None, loss=None, **loss_kwargs):
    """The `loss` and `loss_weights` dicts of `model.compile` for a DANet.

    Args:
        output_names: the model's output names (`model.output_names`), e.g.
            `("logits", "position_logits", "channel_logits")`.
        loss_weights: None or a dict {output name: weight} that overrides
            `DEFAULT_LOSS_WEIGHTS`; a weight of 0 drops that output's loss.
        loss: None for a `SegmentationCrossEntropy(**loss_kwargs)` on each
            output, or one loss (a `keras.losses.Loss`, or a name or function
            Keras takes) for every output.
        **loss_kwargs: `SegmentationCrossEntropy` arguments (ignore_index,
            class_weights, ohem_threshold, ohem_min_kept), without `loss`.

    Returns:
        `(losses, weights)`: dicts keyed by the outputs that have a loss.

    Raises:
        ValueError: a weight names an output the model does not have, or no
            output has a positive weight.
    """
    output_names = tuple(output_names)
    loss_weights = dict(loss_weights or {})
    unknown = sorted(set(loss_weights) - set(output_names))
    if unknown:
        raise ValueError(
            f"`loss_weights` names outputs {unknown} that the model does not have; its outputs "
            f"are {list(output_names)}."
        )
    weights = {}
    for name in output_names:
        weight = float(loss_weights.get(name, DEFAULT_LOSS_WEIGHTS.get(name, 0.0)))
        if weight < 0:
            raise ValueError(f"`loss_weights[{name!r}]` must be >= 0, got {weight}.")
        if weight > 0:
            weights[name] = weight
    if not weights:
        raise ValueError(f"No output has a positive loss weight: {loss_weights}.")
    if loss is None:
        losses = {
            name: SegmentationCrossEntropy(name=f"{name}_cross_entropy", **loss_kwargs)
            for name in weights
        }
    elif loss_kwargs:
        raise ValueError(
            f"{sorted(loss_kwargs)} configure the default cross entropy; give them to your "
            "loss instead."
        )
    else:
        losses = dict.fromkeys(weights, loss)
    return losses, weights


def with_output_labels(dataset, output_names):
    """Maps `(images, labels)` batches to `(images, {output: labels})`.

    A `DANet` does not need it: it gives a plain label map to each of its
    outputs itself (`DANet.compute_loss`). It serves models that take one
    label per output by name.

    Args:
        dataset: a `tf.data.Dataset` of `(images, labels)`.
        output_names: the outputs that have a loss (keys of
            `segmentation_losses(...)[0]`) or a metric.

    Returns:
        The mapped dataset.
    """
    output_names = tuple(output_names)
    return dataset.map(lambda images, labels: (images, {name: labels for name in output_names}))
