"""ADE20K, PASCAL Context, COCO-Stuff and the plain folder reader."""

import numpy as np
import pytest
import tensorflow as tf

from danet_keras.data import (
    ade20k_dataset,
    coco_stuff10k_dataset,
    coco_stuff164k_dataset,
    folder_dataset,
    load_dataset,
)

ROW = (4, 6)


def row(*values):
    return np.resize(np.asarray(values, np.uint8), ROW[1])[None, :].repeat(ROW[0], 0)


def test_ade20k_reduces_the_zero_label(tree, read_all):
    base = ("ADEChallengeData2016",)
    for folder, name in (("training", "ADE_train_00000001"), ("validation", "ADE_val_00000001")):
        tree.image(*base, "images", folder, f"{name}.jpg", size=ROW, fmt="JPEG")
        tree.label(*base, "annotations", folder, f"{name}.png", values=row(0, 1, 150, 13))
    split = ade20k_dataset(tree.root, "train")
    assert split.num_classes == 150 and len(split) == 1
    ((image, label),) = read_all(split)
    assert image.shape == (4, 6, 3)
    assert list(label[0, :4]) == [255, 0, 149, 12]
    assert len(ade20k_dataset(f"{tree.root}/ADEChallengeData2016", "validation")) == 1
    with pytest.raises(ValueError, match="ADE20K split"):
        ade20k_dataset(tree.root, "test")


def test_ade20k_value_above_150_is_an_error(tree):
    tree.image("images", "training", "a.jpg", size=ROW, fmt="JPEG")
    bad = tree.label("annotations", "training", "a.png", values=row(151))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{bad}: label value 151"):
        list(ade20k_dataset(tree.root, "train").dataset)


def test_pascal_context_59(tree, read_all):
    tree.image("VOC2010", "JPEGImages", "2008_000002.jpg", size=ROW, fmt="JPEG")
    tree.label("VOC2010", "SegmentationClassContext", "2008_000002.png", values=row(0, 1, 59))
    tree.text("VOC2010", "ImageSets", "SegmentationContext", "train.txt", lines=["2008_000002"])
    split = load_dataset("pascal_context", f"{tree.root}/VOC2010", "train")
    assert split.num_classes == 59
    ((_, label),) = read_all(split)
    assert list(label[0, :3]) == [255, 0, 58]


def test_coco_stuff_164k_converted_and_raw_and_10k(tree, read_all):
    tree.image("images", "val2017", "000000000139.jpg", size=ROW, fmt="JPEG")
    tree.label("annotations", "val2017", "000000000139_labelTrainIds.png", values=row(0, 170, 255))
    tree.label("annotations", "val2017", "000000000139.png", values=row(0, 12, 181, 255))
    ((_, converted),) = read_all(coco_stuff164k_dataset(tree.root, "val"))
    assert list(converted[0, :3]) == [0, 170, 255]
    raw = coco_stuff164k_dataset(tree.root, "val", label_type="stuffthingmaps")
    assert raw.num_classes == 171
    ((_, mapped),) = read_all(raw)
    assert list(mapped[0, :4]) == [0, 11, 170, 255]
    tree.image("images", "test2014", "COCO_train2014_000000000077.jpg", size=ROW, fmt="JPEG")
    tree.label("annotations", "test2014", "COCO_train2014_000000000077_labelTrainIds.png",
               values=row(5))  # fmt: skip
    assert len(coco_stuff10k_dataset(tree.root, "test")) == 1


def test_coco_stuff_unused_raw_id_is_an_error(tree):
    tree.image("images", "train2017", "1.jpg", size=ROW, fmt="JPEG")
    bad = tree.label("annotations", "train2017", "1.png", values=row(11))
    split = coco_stuff164k_dataset(tree.root, "train", label_type="stuffthingmaps")
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{bad}: label value 11 is not"):
        list(split.dataset)


def test_folder_with_user_classes(tree, read_all):
    tree.image("images", "train", "sub", "a.png", size=ROW)
    tree.label("labels", "train", "sub", "a_mask.png", values=row(0, 1, 2, 255))
    tree.image("images", "val", "b.jpg", size=ROW, fmt="JPEG")
    tree.label("labels", "val", "b_mask.png", values=row(2))
    split = folder_dataset(
        tree.root, "train", class_names=["bg", "cat", "dog"], label_suffix="_mask"
    )
    assert split.info.class_names == ("bg", "cat", "dog") and split.info.palette.shape == (3, 3)
    ((_, label),) = read_all(split)
    assert list(label[0, :4]) == [0, 1, 2, 255]
    reduced = folder_dataset(tree.root, "train", class_names=["cat", "dog"], label_suffix="_mask",
                             reduce_zero_label=True)  # fmt: skip
    ((_, label),) = read_all(reduced)
    assert list(label[0, :3]) == [255, 0, 1]
    too_few = folder_dataset(tree.root, "train", class_names=["bg", "cat"], label_suffix="_mask")
    with pytest.raises(tf.errors.InvalidArgumentError, match="label value 2 is not"):
        read_all(too_few)
    with pytest.raises(ValueError, match="class_names"):
        folder_dataset(tree.root, "train")


def test_colour_label_png_is_refused(tree):
    tree.image("images", "a.png", size=ROW)
    colour = tree.image("labels", "a.png", size=ROW)  # an RGB picture, not class ids
    split = folder_dataset(tree.root, class_names=["a"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{colour}: colour label PNG"):
        list(split.dataset)


def test_load_dataset_refuses_unknown_names(tree):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", tree.root)
