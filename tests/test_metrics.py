import keras
import numpy as np
import pytest

from danet_keras.metrics import MeanIoU

NUM_CLASSES = 5


def numpy_confusion(labels, predictions, num_classes, ignore_index=255):
    """Reference confusion matrix: rows ground truth, columns prediction."""
    labels, predictions = labels.ravel(), predictions.ravel()
    keep = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels[keep], predictions[keep]), 1)
    return matrix


def numpy_scores(matrix):
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
    return iou, np.nanmean(iou), intersection.sum() / matrix.sum()


def random_batch(rng, shape=(3, 17, 23), ignore_fraction=0.2):
    labels = rng.integers(0, NUM_CLASSES, shape).astype(np.int32)
    labels[rng.random(shape) < ignore_fraction] = 255
    logits = rng.normal(size=shape + (NUM_CLASSES,)).astype(np.float32)
    # Predictions that agree with the labels more often than chance.
    logits += 2.0 * np.eye(NUM_CLASSES, dtype=np.float32)[np.clip(labels, 0, NUM_CLASSES - 1)]
    return labels, logits


def test_matches_numpy_reference_and_keras_meaniou():
    rng = np.random.default_rng(0)
    metric = MeanIoU(NUM_CLASSES)
    reference = keras.metrics.MeanIoU(NUM_CLASSES, ignore_class=255, sparse_y_pred=False)
    all_labels, all_logits = [], []
    for _ in range(3):
        labels, logits = random_batch(rng)
        metric.update_state(labels, logits)
        reference.update_state(labels, logits)
        all_labels.append(labels)
        all_logits.append(logits)
    labels = np.concatenate(all_labels)
    predictions = np.concatenate(all_logits).argmax(-1)
    matrix = numpy_confusion(labels, predictions, NUM_CLASSES)
    iou, mean_iou, accuracy = numpy_scores(matrix)

    np.testing.assert_array_equal(np.asarray(metric.confusion_matrix()), matrix)
    # Ratios of exact integer counts, in float32 vs float64: one or two roundings.
    np.testing.assert_allclose(np.asarray(metric.per_class_iou()), iou, rtol=1e-6)
    # Ratios of exact integer counts, in float32 vs float64: one or two roundings.
    np.testing.assert_allclose(float(metric.result()), mean_iou, rtol=1e-6)
    # Ratios of exact integer counts, in float32 vs float64: one or two roundings.
    np.testing.assert_allclose(float(metric.pixel_accuracy()), accuracy, rtol=1e-6)
    # Ratios of exact integer counts, in float32 vs float64: one or two roundings.
    np.testing.assert_allclose(float(metric.result()), float(reference.result()), rtol=1e-5)
    assert 0.2 < mean_iou < 0.9  # the data is neither trivial nor chance


def test_label_maps_logits_and_channel_labels_agree():
    rng = np.random.default_rng(1)
    labels, logits = random_batch(rng)
    from_logits, from_labels = MeanIoU(NUM_CLASSES), MeanIoU(NUM_CLASSES)
    from_logits.update_state(labels[..., None], logits)
    from_labels.update_state(labels, logits.argmax(-1))
    np.testing.assert_array_equal(
        np.asarray(from_logits.confusion_matrix()), np.asarray(from_labels.confusion_matrix())
    )


def test_absent_class_is_left_out_of_the_mean():
    labels = np.array([[0, 0, 1, 1]])
    predictions = np.array([[0, 0, 1, 0]])
    metric = MeanIoU(4)
    metric.update_state(labels, predictions)
    iou = np.asarray(metric.per_class_iou())
    np.testing.assert_allclose(iou[:2], [2 / 3, 1 / 2])
    assert np.isnan(iou[2]) and np.isnan(iou[3])
    # Ratios of exact integer counts, in float32 vs float64: one or two roundings.
    np.testing.assert_allclose(float(metric.result()), (2 / 3 + 1 / 2) / 2, rtol=1e-6)


def test_predicted_but_absent_class_counts_as_zero():
    metric = MeanIoU(3)
    metric.update_state(np.array([[0, 0]]), np.array([[0, 2]]))
    np.testing.assert_allclose(np.asarray(metric.per_class_iou())[[0, 2]], [0.5, 0.0])
    # Ratios of exact integer counts, in float32 vs float64: one or two roundings.
    np.testing.assert_allclose(float(metric.result()), 0.25, rtol=1e-6)


def test_ignore_index_and_out_of_range_labels_are_not_counted():
    labels = np.array([[0, 255, 7, -1, 1]])
    predictions = np.array([[0, 1, 1, 1, 1]])
    metric = MeanIoU(2)
    metric.update_state(labels, predictions)
    np.testing.assert_array_equal(np.asarray(metric.confusion_matrix()), [[1, 0], [0, 1]])
    assert float(metric.result()) == 1.0


def test_ignore_index_none_counts_every_in_range_label():
    metric = MeanIoU(3, ignore_index=None)
    metric.update_state(np.array([[0, 1, 2]]), np.array([[0, 1, 1]]))
    assert int(np.asarray(metric.confusion_matrix()).sum()) == 3


def test_sample_weight_masks_pixels():
    metric = MeanIoU(2)
    metric.update_state(
        np.array([[0, 1, 1]]), np.array([[0, 0, 1]]), sample_weight=np.array([[1, 0, 1]])
    )
    np.testing.assert_array_equal(np.asarray(metric.confusion_matrix()), [[1, 0], [0, 1]])


def test_reset_and_config_round_trip():
    metric = MeanIoU(3, ignore_index=0, name="miou")
    metric.update_state(np.array([[1, 2]]), np.array([[1, 2]]))
    metric.reset_state()
    assert int(np.asarray(metric.confusion_matrix()).sum()) == 0
    clone = MeanIoU.from_config(metric.get_config())
    assert (clone.num_classes, clone.ignore_index, clone.name) == (3, 0, "miou")


def test_counts_are_exact_beyond_float32_precision():
    # 2**24 + 1 pixels of one class: a float32 counter would lose the last one.
    metric = MeanIoU(2)
    labels = np.zeros((1, 4097, 4097), np.int32)
    metric.update_state(labels, labels)
    assert int(np.asarray(metric.confusion_matrix())[0, 0]) == 4097 * 4097


@pytest.mark.parametrize("num_classes", [0, 2.5, True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        MeanIoU(num_classes)
