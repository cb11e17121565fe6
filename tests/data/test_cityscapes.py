import os

import numpy as np
import pytest
import tensorflow as tf

from danet_keras.data import cityscapes_dataset, load_dataset

SIZE = (6, 8)


def write_city(tree, split, stem, label_ids, city="aachen", size=SIZE):
    image = tree.image("leftImg8bit", split, city, f"{stem}_leftImg8bit.png", size=size)
    label = tree.label("gtFine", split, city, f"{stem}_gtFine_labelIds.png", values=label_ids)
    return image, label


def ids(*values):
    """A 6x8 label map whose columns hold `values` in turn."""
    return np.resize(np.asarray(values, np.uint8), SIZE[1])[None, :].repeat(SIZE[0], 0)


def test_reads_images_and_maps_label_ids_to_train_ids(tree, read_all):
    # 0 unlabeled, 1 ego vehicle, 4 static, 9 parking, 29 caravan -> ignored; others mapped.
    write_city(tree, "train", "aachen_000000_000019", ids(7, 8, 11, 26, 0, 1, 4, 33))
    write_city(tree, "train", "aachen_000001_000019", ids(9, 29, 23, 24, 21, 22, 17, 13))
    write_city(tree, "val", "lindau_000000_000019", ids(7), city="lindau")
    split = cityscapes_dataset(tree.root, "train")
    assert len(split) == 2 and split.num_classes == 19
    (image0, label0), (image1, label1) = read_all(split)
    assert image0.shape == (6, 8, 3) and image0.dtype == np.uint8
    assert label0.shape == (6, 8) and label0.dtype == np.uint8
    assert list(label0[0]) == [0, 1, 2, 13, 255, 255, 255, 18]
    assert list(label1[0]) == [255, 255, 10, 11, 8, 9, 5, 4]
    val = cityscapes_dataset(tree.root, "val")
    assert len(val) == 1 and val.files[0][0].endswith("lindau_000000_000019_leftImg8bit.png")
    assert load_dataset("cityscapes", tree.root, "val").files == val.files


def test_label_train_ids_files(tree, read_all):
    tree.image("leftImg8bit", "val", "a", "a_0_0_leftImg8bit.png", size=SIZE)
    tree.label("gtFine", "val", "a", "a_0_0_gtFine_labelTrainIds.png", values=ids(0, 18, 255))
    ((_, label),) = read_all(cityscapes_dataset(tree.root, "val", label_type="labelTrainIds"))
    assert list(label[0, :3]) == [0, 18, 255]


def test_missing_directory_and_empty_split(tree):
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        cityscapes_dataset(tree.root, "train")
    os.makedirs(os.path.join(tree.root, "leftImg8bit", "train"))
    os.makedirs(os.path.join(tree.root, "gtFine", "train"))
    with pytest.raises(ValueError, match="empty split"):
        cityscapes_dataset(tree.root, "train")


def test_unpaired_files_are_named(tree, read_all):
    write_city(tree, "train", "a_0_0", ids(7))
    lonely_image = tree.image("leftImg8bit", "train", "aachen", "a_0_1_leftImg8bit.png")
    lonely_label = tree.label(
        "gtFine", "train", "aachen", "a_0_2_gtFine_labelIds.png", values=ids(7)
    )
    with pytest.raises(ValueError) as error:
        cityscapes_dataset(tree.root, "train")
    assert f"{lonely_image}: image has no label file" in str(error.value)
    assert f"{lonely_label}: label has no image file" in str(error.value)
    split = cityscapes_dataset(tree.root, "train", skip_invalid=True)
    assert len(read_all(split)) == 1 and split.skipped.count == 2


def test_size_mismatch_is_caught_eagerly_and_in_the_pipeline(tree):
    _, label = write_city(tree, "train", "a_0_0", np.zeros((5, 8), np.uint8) + 7)
    with pytest.raises(ValueError, match=f"{label}: label size 8x5 .* differs"):
        cityscapes_dataset(tree.root, "train")
    split = cityscapes_dataset(tree.root, "train", check_files=False)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="label size 5x8 .*differs from its image"
    ):
        list(split.dataset)


def test_label_value_outside_the_ids_names_the_file(tree, read_all):
    write_city(tree, "train", "a_0_0", ids(7))
    _, bad = write_city(tree, "train", "a_0_1", ids(7, 34))
    split = cityscapes_dataset(tree.root, "train")
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"{bad}: label value 34 is not a label id"
    ):
        list(split.dataset)
    skipping = cityscapes_dataset(tree.root, "train", skip_invalid=True)
    assert len(read_all(skipping)) == 1
    assert skipping.skipped.count == 1 and bad in skipping.skipped.problems[0]


@pytest.mark.parametrize(
    "corrupt, problem",
    [(lambda b: b[:-16], "truncated PNG"), (lambda b: b"not an image at all", "")],
)
def test_corrupt_images_name_the_file(tree, corrupt, problem):
    image, _ = write_city(tree, "train", "a_0_0", ids(7))
    with open(image, "rb") as f:
        contents = f.read()
    with open(image, "wb") as f:
        f.write(corrupt(contents))
    if problem:  # a PNG header survives truncation: only the in-graph check sees it
        split = cityscapes_dataset(tree.root, "train")
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"{image}: {problem}"):
            list(split.dataset)
    else:
        with pytest.raises(ValueError, match=f"{image}: not a PNG or JPEG file"):
            cityscapes_dataset(tree.root, "train")
        split = cityscapes_dataset(tree.root, "train", check_files=False)
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"{image}: not a PNG or JPEG"):
            list(split.dataset)
