"""Parity of an exported artefact with the Keras model it came from."""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from danet_keras.data.classes import model_classes
from danet_keras.export.runners import KerasRunner, load_runner, resize_images


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """How far an artefact's outputs are from the Keras model's.

    Attributes:
        max_abs_logit_diff: max |logits - reference logits| (NaN when the
            artefact has no logits).
        logit_range: max - min of the reference logits.
        max_abs_probability_diff: max |probabilities - reference| (NaN when
            the artefact has no probabilities).
        class_agreement: fraction of pixels with the same class id.
        num_pixels: pixels compared.
        class_names: the model's class names (see `models.classes`).
        per_class_agreement: {class name: agreement} over the pixels that the
            Keras model gives that class, for the classes it predicts.
        classes_kept: whether the artefact carries the model's class names
            and colours (None when not checked).
    """

    max_abs_logit_diff: float
    logit_range: float
    max_abs_probability_diff: float
    class_agreement: float
    num_pixels: int
    class_names: tuple = ()
    per_class_agreement: dict = dataclasses.field(default_factory=dict)
    classes_kept: bool = None

    @property
    def relative_logit_diff(self):
        """`max_abs_logit_diff` divided by the reference logit range."""
        return self.max_abs_logit_diff / max(self.logit_range, 1e-12)

    def __str__(self):
        parts = []
        # An artefact exported with fewer outputs (`outputs=("class_ids",)`) is compared on
        # what it returns.
        if not math.isnan(self.max_abs_logit_diff):
            parts.append(
                f"max |logit diff| {self.max_abs_logit_diff:.3g} "
                f"({self.relative_logit_diff:.2e} of the logit range {self.logit_range:.3g})"
            )
        if not math.isnan(self.max_abs_probability_diff):
            parts.append(f"max |probability diff| {self.max_abs_probability_diff:.3g}")
        parts.append(
            f"class_ids agreement {100 * self.class_agreement:.3f}% of {self.num_pixels} pixels"
        )
        text = ", ".join(parts)
        if self.per_class_agreement:
            name, worst = min(self.per_class_agreement.items(), key=lambda item: item[1])
            text += f" (lowest: {name} {100 * worst:.2f}%)"
        if self.classes_kept is not None:
            text += (
                f"; carries the model's {len(self.class_names)} class names and colours"
                if self.classes_kept
                else "; does NOT carry the model's class names and colours"
            )
        return text


def compare_outputs(reference, outputs, class_names=None):
    """A `ParityReport` of `outputs` against `reference` (runner output dicts).

    Args:
        reference, outputs: runner output dicts.
        class_names: the K class names, for the per-class agreement.
    """

    def max_abs_diff(key):
        if key not in outputs:
            return float("nan")
        return float(np.abs(outputs[key] - reference[key]).max())

    expected, actual = reference["class_ids"], outputs["class_ids"]
    per_class = {}
    for index, name in enumerate(class_names or ()):
        predicted = expected == index
        if predicted.any():
            per_class[name] = float(np.mean(actual[predicted] == index))
    return ParityReport(
        max_abs_logit_diff=max_abs_diff("logits"),
        logit_range=float(np.ptp(reference["logits"])),
        max_abs_probability_diff=max_abs_diff("probabilities"),
        class_agreement=float(np.mean(actual == expected)),
        num_pixels=int(expected.size),
        class_names=tuple(class_names or ()),
        per_class_agreement=per_class,
    )


def synthetic_images(count, size, seed=0):
    """Smooth random uint8 RGB images (count, height, width, 3) for parity checks.

    Noise upsampled from 1/8 resolution: natural-image-like regions rather
    than per-pixel noise, so class maps have areas and edges.
    """
    height, width = size
    coarse = np.random.default_rng(seed).uniform(
        0, 255, (count, max(1, height // 8), max(1, width // 8), 3)
    )
    smooth = tf.image.resize(coarse.astype(np.float32), (height, width), method="bicubic")
    return np.clip(np.round(smooth.numpy()), 0, 255).astype(np.uint8)


def check_parity(model, artefact, images, **runner_options):
    """Runs the Keras model and an artefact on the same images and compares.

    Images are fed at the artefact's input size (resized first when it has
    a static one), so both see the same pixels.

    Args:
        model: the Keras model the artefact was exported from.
        artefact: the artefact's path, or a runner (`runners.load_runner`).
        images: uint8 (B, H, W, 3).
        **runner_options: passed to `load_runner` (e.g. `use_xnnpack`).

    Returns:
        A `ParityReport`.
    """
    runner = load_runner(artefact, **runner_options) if isinstance(artefact, str) else artefact
    images = np.asarray(images)
    if runner.input_size is not None:
        images = resize_images(images, runner.input_size)
    reference = KerasRunner(model)
    classes = model_classes(reference, notice=False)
    report = compare_outputs(reference(images), runner(images), classes.class_names)
    kept = model_classes(runner, notice=False)
    return dataclasses.replace(
        report,
        classes_kept=kept.class_names == classes.class_names
        and np.array_equal(kept.palette, classes.palette),
    )
