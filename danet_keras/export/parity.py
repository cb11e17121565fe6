"""Parity of an exported artefact with the Keras model it came from."""

import dataclasses

import numpy as np

from danet_keras.export.runners import KerasRunner, load_runner


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """How far an artefact's outputs are from the Keras model's.

    Attributes:
        max_abs_logit_diff: max |logits - reference logits| (NaN when the
            artefact has no logits).
        logit_range: max - min of the reference logits.
        max_abs_probability_diff: max |probabilities - reference|.
        class_agreement: fraction of pixels with the same class id.
        num_pixels: pixels compared.
    """

    max_abs_logit_diff: float
    logit_range: float
    max_abs_probability_diff: float
    class_agreement: float
    num_pixels: int

    @property
    def relative_logit_diff(self):
        """`max_abs_logit_diff` divided by the reference logit range."""
        return self.max_abs_logit_diff / max(self.logit_range, 1e-12)

    def __str__(self):
        return (
            f"max |logit diff| {self.max_abs_logit_diff:.3g} "
            f"({self.relative_logit_diff:.2e} of the logit range {self.logit_range:.3g}), "
            f"max |probability diff| {self.max_abs_probability_diff:.3g}, "
            f"class_ids agreement {100 * self.class_agreement:.3f}% of {self.num_pixels} pixels"
        )


def compare_outputs(reference, outputs):
    """A `ParityReport` of `outputs` against `reference` (runner output dicts)."""
    logit_diff = float("nan")
    if "logits" in outputs:
        logit_diff = float(np.abs(outputs["logits"] - reference["logits"]).max())
    return ParityReport(
        max_abs_logit_diff=logit_diff,
        logit_range=float(np.ptp(reference["logits"])),
        max_abs_probability_diff=float(
            np.abs(outputs["probabilities"] - reference["probabilities"]).max()
        ),
        class_agreement=float(np.mean(outputs["class_ids"] == reference["class_ids"])),
        num_pixels=int(reference["class_ids"].size),
    )


def synthetic_images(count, size, seed=0):
    """Smooth random uint8 RGB images (count, height, width, 3) for parity checks.

    Noise upsampled from 1/8 resolution: natural-image-like regions rather
    than per-pixel noise, so class maps have areas and edges.
    """
    import tensorflow as tf

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
    import tensorflow as tf

    runner = load_runner(artefact, **runner_options) if isinstance(artefact, str) else artefact
    images = np.asarray(images)
    if runner.input_size is not None and images.shape[1:3] != runner.input_size:
        resized = tf.image.resize(images.astype(np.float32), runner.input_size).numpy()
        images = np.clip(np.round(resized), 0, 255).astype(np.uint8)
    return compare_outputs(KerasRunner(model)(images), runner(images))
