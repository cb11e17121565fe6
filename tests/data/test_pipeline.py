import numpy as np
import pytest
import tensorflow as tf

from danet_keras.data import cityscapes_dataset, eval_pipeline, train_pipeline


@pytest.fixture
def city(tree):
    """Five 12x16 Cityscapes examples; image i is constant i*20, its label train id i."""
    for index in range(5):
        stem = f"c_{index:06d}_000019"
        tree.image("leftImg8bit", "train", "c", f"{stem}_leftImg8bit.png", size=(12, 16),
                   value=index * 20)  # fmt: skip
        label_id = [7, 8, 11, 21, 23][index]  # road, sidewalk, building, vegetation, sky
        tree.label("gtFine", "train", "c", f"{stem}_gtFine_labelIds.png",
                   values=np.full((12, 16), label_id))  # fmt: skip
    return cityscapes_dataset(tree.root, "train")


TRAIN_IDS = {0: 0, 20: 1, 40: 2, 60: 8, 80: 10}


def batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


def test_train_batches_have_the_model_fit_format(city):
    dataset = train_pipeline(city, (8, 8), batch_size=2, photometric=False, deterministic=True)
    assert dataset.element_spec[0].shape.as_list() == [2, 8, 8, 3]
    assert dataset.element_spec[0].dtype == tf.float32
    assert dataset.element_spec[1].shape.as_list() == [2, 8, 8]
    assert dataset.element_spec[1].dtype == tf.int32
    result = batches(dataset)
    assert len(result) == 2  # 5 examples, remainder dropped
    for images, labels in result:
        for image, label in zip(images, labels):
            colour = int(round(image[~(label == 255)][0, 0]))
            assert set(np.unique(label)) <= {TRAIN_IDS[colour], 255}


def test_deterministic_runs_repeat_and_epochs_differ(city):
    def run(seed):
        return batches(train_pipeline(city, (8, 8), 1, deterministic=True, seed=seed))

    first, again = run(5), run(5)
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    dataset = train_pipeline(city, (8, 8), 5, deterministic=True, seed=5, cache=True)
    epoch1, epoch2 = batches(dataset), batches(dataset)
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])
    # a cached epoch still holds every example once
    assert sorted(int(label[label != 255][0]) for label in epoch2[0][1]) == [0, 1, 2, 8, 10]


def test_input_context_shards_the_files(city):
    seen = []
    for index in range(2):
        context = tf.distribute.InputContext(2, index, num_replicas_in_sync=2)
        dataset = eval_pipeline(city, batch_size=2, input_context=context)
        seen.append([int(images[0, 0, 0, 0]) for images, _ in dataset])
        assert dataset.options().experimental_distribute.auto_shard_policy == (
            tf.data.experimental.AutoShardPolicy.OFF
        )
    assert sorted(seen[0] + seen[1]) == [0, 20, 40, 60, 80]
    assert not set(seen[0]) & set(seen[1])


def test_eval_pipeline_keeps_order_and_pads_mixed_sizes(tree):
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([(np.full((4, 6, 3), 1, np.uint8), np.zeros((4, 6), np.uint8)),
                      (np.full((6, 4, 3), 2, np.uint8), np.ones((6, 4), np.uint8))]),
        output_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([None, None], tf.uint8),
        ),
    )  # fmt: skip
    ((images, labels),) = batches(eval_pipeline(dataset, batch_size=2))
    assert images.shape == (2, 6, 6, 3) and labels.dtype == np.int32
    assert (labels[0, 4:] == 255).all() and (labels[1, :, 4:] == 255).all()
    assert (images[0, 4:] == 0).all() and (images[0, :4, :6] == 1).all()
    ((resized, _),) = batches(eval_pipeline(dataset.take(1), short_side=8))
    assert resized.shape == (1, 8, 12, 3)


def test_plain_datasets_are_accepted_and_others_refused():
    dataset = tf.data.Dataset.from_tensors(
        (tf.zeros([10, 10, 3], tf.uint8), tf.zeros([10, 10], tf.uint8))
    )
    ((images, labels),) = batches(train_pipeline(dataset, 6, 1))
    assert images.shape == (1, 6, 6, 3) and labels.shape == (1, 6, 6)
    with pytest.raises(TypeError, match="DatasetSplit or a tf.data.Dataset"):
        train_pipeline([1, 2], 6, 1)


def halves(count=4, size=(8, 12)):
    """Images whose left half is colour 40 (label 2) and right half colour 200 (label 5)."""
    height, width = size
    images = np.full((count, height, width, 3), 40, np.uint8)
    images[:, :, width // 2 :] = 200
    labels = np.full((count, height, width), 2, np.uint8)
    labels[:, :, width // 2 :] = 5
    return tf.data.Dataset.from_tensor_slices((images, labels))


def assert_aligned(images, labels):
    for image, label in zip(images, labels):
        np.testing.assert_array_equal(np.where(image[..., 0] > 120, 5, 2), label)


@pytest.mark.parametrize("source", ["keras_cv", "keras"])
def test_keras_and_keras_cv_augmenters_keep_labels_aligned(source):
    if source == "keras_cv":
        keras_cv = pytest.importorskip("keras_cv", reason="the `keras-cv` extra is not installed")
        layer = keras_cv.layers.RandomFlip(mode="horizontal", rate=1.0)
    else:
        import keras

        layer = keras.layers.RandomFlip("horizontal", seed=0)
    dataset = train_pipeline(
        halves(), (8, 12), 2, scale_range=None, flip=False, photometric=False, shuffle=False,
        augmenter=layer,
    )  # fmt: skip
    flipped = 0
    for images, labels in batches(dataset):
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert_aligned(images, labels)
        flipped += int(np.sum(labels[:, 0, 0] == 5))
    if source == "keras_cv":
        assert flipped == 4  # rate=1.0: every example was mirrored
