import numpy as np
import pytest
import tensorflow as tf

from danet_keras.losses import (
    DEFAULT_LOSS_WEIGHTS,
    SegmentationCrossEntropy,
    segmentation_losses,
    with_output_labels,
)

K = 4


def numpy_pixel_ce(labels, logits):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    safe = np.where((labels >= 0) & (labels < K), labels, 0)
    return -np.take_along_axis(log_probs, safe[..., None], -1)[..., 0], np.exp(log_probs)


def random_case(seed=0, shape=(2, 6, 7)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, shape).astype(np.int32)
    labels[rng.random(shape) < 0.25] = 255
    logits = rng.normal(scale=2.0, size=shape + (K,)).astype(np.float32)
    return labels, logits


def test_mean_over_valid_pixels_like_torch_ignore_index():
    labels, logits = random_case()
    pixel_ce, _ = numpy_pixel_ce(labels, logits)
    valid = labels != 255
    expected = pixel_ce[valid].mean()
    loss = SegmentationCrossEntropy()(labels, logits)
    # float32 mean of ~60 log-softmax terms vs float64: ~sqrt(60) eps = 1e-6 relative.
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_class_weights_weighted_mean():
    labels, logits = random_case(1)
    weights = np.array([0.5, 1.0, 2.0, 3.0])
    pixel_ce, _ = numpy_pixel_ce(labels, logits)
    valid = labels != 255
    w = weights[labels[valid]]
    expected = (w * pixel_ce[valid]).sum() / w.sum()
    loss = SegmentationCrossEntropy(class_weights=weights)(labels, logits)
    # float32 mean of ~60 log-softmax terms vs float64: ~sqrt(60) eps = 1e-6 relative.
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_channel_axis_labels_and_out_of_range_labels():
    labels, logits = random_case(2)
    labels_out_of_range = labels.copy()
    labels_out_of_range[labels == 255] = 9
    a = SegmentationCrossEntropy()(labels[..., None], logits)
    b = SegmentationCrossEntropy()(labels_out_of_range, logits)
    # The same op sequence on the same logits: at most a rounding of the sum.
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)


def test_all_ignored_gives_zero_loss_and_finite_gradients():
    logits = tf.Variable(np.random.default_rng(3).normal(size=(1, 4, 4, K)).astype(np.float32))
    labels = np.full((1, 4, 4), 255, np.int32)
    with tf.GradientTape() as tape:
        loss = SegmentationCrossEntropy()(labels, logits)
    gradient = tape.gradient(loss, logits)
    assert float(loss) == 0.0
    assert np.all(np.isfinite(gradient.numpy()))


@pytest.mark.parametrize("threshold,min_kept", [(0.7, 5), (0.3, 40), (0.99, 1000)])
def test_ohem_keeps_hard_pixels_as_mmsegmentation(threshold, min_kept):
    labels, logits = random_case(4, shape=(2, 8, 8))
    pixel_ce, probs = numpy_pixel_ce(labels, logits)
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    true_prob = np.take_along_axis(probs, safe[..., None], -1)[..., 0]
    sorted_probs = np.sort(true_prob[valid])
    cut = max(threshold, sorted_probs[min(min_kept, valid.sum()) - 1])
    keep = valid & (true_prob < cut)
    expected = pixel_ce[keep].mean()
    loss = SegmentationCrossEntropy(ohem_threshold=threshold, ohem_min_kept=min_kept)(
        labels, logits
    )
    # float32 mean of ~60 log-softmax terms vs float64: ~sqrt(60) eps = 1e-6 relative.
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert keep.sum() >= min(min_kept, valid.sum()) - 1


def test_bad_ohem_settings_and_class_weight_count():
    with pytest.raises(ValueError, match="ohem_threshold"):
        SegmentationCrossEntropy(ohem_threshold=1.5)
    with pytest.raises(ValueError, match="ohem_min_kept"):
        SegmentationCrossEntropy(ohem_threshold=0.7, ohem_min_kept=0)
    labels, logits = random_case()
    with pytest.raises(ValueError, match="class_weights"):
        SegmentationCrossEntropy(class_weights=[1.0, 2.0])(labels, logits)


def test_config_round_trip():
    loss = SegmentationCrossEntropy(
        ignore_index=0, class_weights=[1, 2, 3, 4], ohem_threshold=0.7, ohem_min_kept=7
    )
    clone = SegmentationCrossEntropy.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()


def test_default_weights_follow_the_model_outputs():
    losses, weights = segmentation_losses(("logits", "position_logits", "channel_logits"))
    assert weights == {"logits": 1.0, "position_logits": 1.0, "channel_logits": 1.0}
    assert set(losses) == set(weights)
    _, weights = segmentation_losses(("aux_logits", "logits"))
    assert weights == {"aux_logits": DEFAULT_LOSS_WEIGHTS["aux_logits"], "logits": 1.0}


def test_weights_override_drop_and_unknown_output():
    _, weights = segmentation_losses(
        ("logits", "position_logits", "channel_logits"),
        {"position_logits": 0.0, "channel_logits": 0.5},
    )
    assert weights == {"logits": 1.0, "channel_logits": 0.5}
    with pytest.raises(ValueError, match="aux_logits"):
        segmentation_losses(("logits",), {"aux_logits": 0.4})
    with pytest.raises(ValueError, match="positive"):
        segmentation_losses(("logits",), {"logits": 0.0})


def test_with_output_labels_gives_every_output_the_labels():
    images = np.zeros((2, 4, 4, 3), np.float32)
    labels = np.arange(32, dtype=np.int32).reshape(2, 4, 4)
    dataset = with_output_labels(
        tf.data.Dataset.from_tensors((images, labels)), ("logits", "aux_logits")
    )
    _, targets = next(iter(dataset))
    assert set(targets) == {"logits", "aux_logits"}
    np.testing.assert_array_equal(targets["aux_logits"].numpy(), labels)
