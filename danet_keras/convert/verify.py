"""Numerical parity of a converted Keras DANet with the PyTorch reference (needs torch)."""

import numpy as np

from danet_keras.export.parity import compare_outputs, synthetic_images
from danet_keras.models.conversion.checkpoint import read_state_dict
from danet_keras.models.conversion.names import BOOKKEEPING_SUFFIXES, is_ignored

DEFAULT_VERIFY_SIZE = (97, 129)
# Agreement expected of a correct conversion in float32: framework kernels
# differ by ~1e-4 of the logit range (ResNet-50) to a few 1e-4 (ResNet-101);
# a structural mistake shows as 1e-1 or more.
MAX_RELATIVE_LOGIT_DIFF = 1e-3
MIN_CLASS_AGREEMENT = 0.999


def parity_ok(report):
    """Whether a `ParityReport` is within `MAX_RELATIVE_LOGIT_DIFF` and `MIN_CLASS_AGREEMENT`."""
    return (
        report.relative_logit_diff <= MAX_RELATIVE_LOGIT_DIFF
        and report.class_agreement >= MIN_CLASS_AGREEMENT
    )


def _runner_outputs(logits):
    """The dict `compare_outputs` reads, from (B, H, W, K) logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return {
        "logits": logits,
        "probabilities": shifted / shifted.sum(axis=-1, keepdims=True),
        "class_ids": logits.argmax(axis=-1),
    }


def compare_with_reference(model, reference, images):
    """Runs the Keras model and a PyTorch reference on the same images.

    Args:
        model: a Keras `DANet`; fed the [0, 255] pixels.
        reference: a `torch_reference.DANetReference` in eval mode; fed the
            ImageNet-normalised NCHW tensor of the same pixels.
        images: (B, H, W, 3) RGB pixels in [0, 255].

    Returns:
        `{output name: export.ParityReport}` for every output both have
        (`logits`, `position_logits`, `channel_logits`, `aux_logits`), with
        the PyTorch output as the reference.
    """
    # deferred: torch (which torch_reference imports) is optional
    import torch

    from danet_keras.convert.torch_reference import normalize_images

    images = np.asarray(images)
    keras_outputs = model(images.astype(np.float32), training=False)
    with torch.no_grad():
        torch_outputs = reference(normalize_images(images))
    reports = {}
    for name, value in torch_outputs.items():
        if name in keras_outputs:
            expected = value.permute(0, 2, 3, 1).numpy()
            actual = np.asarray(keras_outputs[name])
            reports[name] = compare_outputs(_runner_outputs(expected), _runner_outputs(actual))
    return reports


def verify_conversion(
    model, checkpoint, arch, config, image_size=DEFAULT_VERIFY_SIZE, num_images=1
):
    """Checks a converted model against the PyTorch reference holding the same checkpoint.

    The checkpoint is loaded into `torch_reference.DANetReference` with
    `load_state_dict(strict=True)`, which also proves that its key layout is
    the one the converter assumed.

    Args:
        model: the converted Keras `DANet`.
        checkpoint: a path or state dict (see `read_state_dict`).
        arch: `"official"` or `"mmseg"`.
        config: the `DANet` arguments the model was built with.
        image_size: (height, width) of the synthetic test images.
        num_images: how many images.

    Returns:
        `{output name: export.ParityReport}`.
    """
    # deferred: torch (which torch_reference imports) is optional
    import torch

    from danet_keras.convert.torch_reference import DANetReference

    state_dict = {
        key: torch.tensor(value)
        for key, value in read_state_dict(checkpoint).items()
        if key.endswith(BOOKKEEPING_SUFFIXES) or not is_ignored(key, arch)
    }
    reference = DANetReference(arch, **config).eval()
    expected = reference.state_dict()
    for key in expected:
        # Checkpoints from PyTorch < 0.4.1 have no BatchNorm counters.
        if key.endswith(BOOKKEEPING_SUFFIXES) and key not in state_dict:
            state_dict[key] = expected[key]
    reference.load_state_dict(state_dict, strict=True)
    return compare_with_reference(model, reference, synthetic_images(num_images, image_size))
