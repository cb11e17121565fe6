"""Float comparisons that hold on any CPU, with tolerances derived from the computation.

oneDNN, Eigen, XNNPACK and onnxruntime pick kernels, blockings and reduction
orders by CPU (AVX2, AVX-512, VNNI, BF16), thread count and graph. Two runs of
the same float32 function in another process, graph or runtime therefore agree
only to rounding, and how much rounding depends on the machine. A tolerance
that merely happened to pass on one machine fails on the next; the ones here
are worked out from float32's precision and the size of the reductions.

Exact equality stays right where the computation is the same op sequence in
the same process (a `.keras` round trip, a whole-image sliding window), or
where the values are integers (confusion matrices, labels).
"""

import numpy as np

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7

# The same float32 network run by other kernels (another process, graph
# rewrite or runtime), as a fraction of the logit range. A reduction of K
# products summed in another order differs by about sqrt(K) * eps of its scale:
# K = 4,608 for a 3x3 conv over 512 channels gives 8e-6. Rounding errors of
# the ~20 such layers of a DANet-ResNet18 add up like a random walk (x sqrt(20)):
# ~4e-5; a factor 2.5 covers the attention's softmax sums and layers that
# amplify. Measured here: 2e-6 to 8.6e-5 (TFLite XNNPACK vs builtin kernels,
# ONNX, a fresh process on AVX-512). The same bound serves TFLite and ONNX.
KERNEL_ORDER_RTOL = 1e-4

# Share of pixels whose class may differ across kernels: only near-ties
# (top-2 logit margin within twice the logit tolerance) can flip, and
# `assert_classes_agree` checks that every other pixel agrees exactly.
MIN_CLASS_AGREEMENT = 0.999


def _max_abs_diff(actual, expected):
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))))


def assert_close_to_scale(actual, expected, rtol, what="values"):
    """max |actual - expected| <= rtol * max |expected|.

    For float results whose error scales with their magnitude (layer outputs
    against NumPy references, features of two graphs): the bound is relative
    to the largest value, not to each element, since a reduction's rounding
    error follows the size of its terms, not of its (possibly cancelled) sum.
    """
    expected = np.asarray(expected, np.float64)
    assert np.asarray(actual).shape == expected.shape, (np.asarray(actual).shape, expected.shape)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    difference = _max_abs_diff(actual, expected)
    assert difference <= rtol * scale, (
        f"{what}: max |difference| {difference:.3g} > {rtol:g} x scale {scale:.3g}"
    )


def logit_tolerance(reference_logits, rtol=KERNEL_ORDER_RTOL):
    """The absolute logit tolerance: `rtol` of the reference logits' range."""
    return rtol * float(np.ptp(np.asarray(reference_logits, np.float64)))


def assert_logits_close(actual, reference, rtol=KERNEL_ORDER_RTOL):
    """max |actual - reference| <= rtol * (max - min of the reference logits)."""
    tolerance = logit_tolerance(reference, rtol)
    difference = _max_abs_diff(actual, reference)
    assert difference <= tolerance, (
        f"logits: max |difference| {difference:.3g} > {rtol:g} of the logit range ({tolerance:.3g})"
    )


def assert_probabilities_close(actual, reference, reference_logits, rtol=KERNEL_ORDER_RTOL):
    """Softmax outputs within what the logit tolerance allows.

    d softmax_i / d z_j = p_i (delta_ij - p_j), whose rows have an absolute sum
    2 p_i (1 - p_i) <= 1/2: logits that move by at most t move every
    probability by at most t / 2.
    """
    tolerance = 0.5 * logit_tolerance(reference_logits, rtol)
    difference = _max_abs_diff(actual, reference)
    assert difference <= tolerance, (
        f"probabilities: max |difference| {difference:.3g} > half the logit tolerance "
        f"({tolerance:.3g})"
    )


def assert_classes_agree(
    actual_ids, reference_logits, rtol=KERNEL_ORDER_RTOL, min_agreement=MIN_CLASS_AGREEMENT
):
    """Class ids equal the reference argmax, except where a near-tie may flip.

    Each logit may move by t = `rtol` of the logit range, so a pixel whose
    reference top-2 margin exceeds 2t cannot change class: those must all
    agree. Over all pixels, at least `min_agreement` must agree.
    """
    reference_logits = np.asarray(reference_logits, np.float64)
    actual_ids = np.asarray(actual_ids)
    reference_ids = np.argmax(reference_logits, axis=-1)
    assert actual_ids.shape == reference_ids.shape, (actual_ids.shape, reference_ids.shape)
    top2 = np.sort(reference_logits, axis=-1)[..., -2:]
    decided = (top2[..., 1] - top2[..., 0]) > 2 * logit_tolerance(reference_logits, rtol)
    flipped = int(np.sum((actual_ids != reference_ids) & decided))
    assert flipped == 0, f"{flipped} pixels changed class although their top-2 margin exceeds 2t"
    agreement = float(np.mean(actual_ids == reference_ids))
    assert agreement >= min_agreement, f"class agreement {agreement:.5f} < {min_agreement}"


def assert_outputs_match(actual, reference, rtol=KERNEL_ORDER_RTOL):
    """Runner output dicts (`logits`, `probabilities`, `class_ids`) agree to kernel rounding."""
    if "logits" in actual:
        assert_logits_close(actual["logits"], reference["logits"], rtol)
    assert_probabilities_close(
        actual["probabilities"], reference["probabilities"], reference["logits"], rtol
    )
    assert_classes_agree(actual["class_ids"], reference["logits"], rtol)


def _bfloat16_kernels_capped_away():
    """True where TensorFlow would send bfloat16 matmuls to oneDNN kernels an ISA cap removed.

    `ONEDNN_MAX_CPU_ISA=AVX2` (`.ci/run --avx2`) makes oneDNN pick the kernels of an AVX2-only
    CPU, but on a CPU with AVX512_BF16 TensorFlow still sees bfloat16 support and hands bf16
    matmuls to oneDNN, which has none left: the process dies with a segmentation fault (TF 2.21,
    a plain `tf.matmul` of two bfloat16 tensors). A real AVX2-only CPU keeps bfloat16 on Eigen's
    kernels and is not affected, so only this simulation skips the bfloat16 tests.
    """
    import os

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" or not cap.startswith(("SSE", "AVX2")):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read()
    except OSError:
        return False


BFLOAT16_KERNELS_CAPPED_AWAY = _bfloat16_kernels_capped_away()


def skip_bfloat16_where_capped_away(reason="bfloat16"):
    """A pytest skip marker for bfloat16 tests under the ISA cap above."""
    import pytest

    return pytest.mark.skipif(
        BFLOAT16_KERNELS_CAPPED_AWAY,
        reason=f"{reason}: ONEDNN_MAX_CPU_ISA caps oneDNN below the bf16 kernels TensorFlow "
        "sends this CPU's bfloat16 matmuls to (a crash of the simulation only)",
    )
