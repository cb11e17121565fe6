import numpy as np
import pytest
import scipy.io

from danet_keras.data import voc_dataset
from danet_keras.data.classes import bit_interleaved_palette

PALETTE = bit_interleaved_palette(256)


def write_voc(tree, name, values, aug=False):
    tree.image("VOC2012", "JPEGImages", f"{name}.jpg", size=(4, 6), fmt="JPEG")
    if aug:  # SegmentationClassAug: grey PNGs
        return tree.label("VOC2012", "SegmentationClassAug", f"{name}.png", values=values)
    return tree.label("VOC2012", "SegmentationClass", f"{name}.png", values=values, palette=PALETTE)


def lists(tree, **splits):
    for split, names in splits.items():
        tree.text("VOC2012", "ImageSets", "Segmentation", f"{split}.txt", lines=names)


def test_palette_labels_are_read_as_indices_with_boundary_ignored(tree, read_all):
    values = np.array([[0, 1, 15, 20, 255, 255]] * 4)
    write_voc(tree, "2007_000032", values)
    write_voc(tree, "2007_000033", np.zeros((4, 6)))
    lists(tree, train=["2007_000032"], val=["2007_000033"])
    split = voc_dataset(f"{tree.root}/VOC2012", "train")
    assert len(split) == 1 and split.num_classes == 21
    ((image, label),) = read_all(split)
    assert image.shape == (4, 6, 3) and label.dtype == np.uint8
    assert list(label[0]) == [0, 1, 15, 20, 255, 255]
    assert len(voc_dataset(f"{tree.root}/VOC2012", "val")) == 1


def test_trainaug_from_segmentation_class_aug_pngs(tree, read_all):
    for name in ("a", "b", "c"):
        write_voc(tree, name, np.full((4, 6), 7), aug=True)
    lists(tree, val=["c"])  # no aug list: every aug id except val
    split = voc_dataset(f"{tree.root}/VOC2012", "trainaug")
    assert [p[1].rsplit("/", 1)[1] for p in split.files] == ["a.png", "b.png"]
    assert all((label == 7).all() for _, label in read_all(split))


def test_trainaug_from_sbd_mat_files(tree, read_all):
    write_voc(tree, "voc_train", np.full((4, 6), 3))
    write_voc(tree, "voc_val", np.full((4, 6), 4))
    tree.image("VOC2012", "JPEGImages", "sbd_only.jpg", size=(4, 6), fmt="JPEG")
    lists(tree, train=["voc_train"], val=["voc_val"])
    sbd = f"{tree.root}/sbd"
    segmentation = np.array([[0, 5, 20, 255, 1, 1]] * 4, np.uint8)
    tree.path("sbd", "cls", "x")
    scipy.io.savemat(f"{sbd}/cls/sbd_only.mat", {"GTcls": {"Segmentation": segmentation}})
    tree.text("sbd", "train.txt", lines=["sbd_only", "voc_val"])  # val images stay out
    tree.text("sbd", "val.txt", lines=["voc_train"])
    split = voc_dataset(f"{tree.root}/VOC2012", "trainaug", sbd_root=sbd)
    assert len(split) == 2
    (_, from_png), (_, from_mat) = read_all(split)
    assert (from_png == 3).all()
    assert list(from_mat[0]) == [0, 5, 20, 255, 1, 1]


def test_file_listed_in_split_but_missing(tree):
    write_voc(tree, "a", np.zeros((4, 6)))
    lists(tree, train=["a", "missing"])
    with pytest.raises(ValueError, match="missing.jpg: file listed in the split is missing"):
        voc_dataset(f"{tree.root}/VOC2012", "train")
    with pytest.raises(FileNotFoundError, match="split list not found"):
        voc_dataset(f"{tree.root}/VOC2012", "val")
