"""PASCAL VOC 2012 segmentation, with the SBD "aug" training set.

    ROOT/JPEGImages/{id}.jpg
    ROOT/SegmentationClass/{id}.png          palette PNGs: 0..20, 255 = boundary (ignored)
    ROOT/ImageSets/Segmentation/{train,val,trainval}.txt

ROOT is `VOCdevkit/VOC2012`. The 10,582-image "trainaug" split comes in two
common forms, both accepted for `split="trainaug"`:

- `ROOT/SegmentationClassAug/{id}.png` (grey PNGs, the DeepLab / mmsegmentation
  preparation) with the list `ROOT/ImageSets/Segmentation/{trainaug,train_aug,
  aug}.txt`; without a list: every id in SegmentationClassAug not in val.txt.
- the SBD release itself (`sbd_root` = `benchmark_RELEASE/dataset`, holding
  `cls/{id}.mat`, `train.txt`, `val.txt`): VOC train + SBD train + SBD val
  minus VOC val, each id labelled by its VOC PNG when there is one, else by
  its SBD `.mat` (`GTcls.Segmentation`); images from `ROOT/JPEGImages`.
"""

import os
from io import BytesIO

import numpy as np
import scipy.io
import tensorflow as tf

from danet_keras.data.classes import dataset_info
from danet_keras.data.decode import read_label_png
from danet_keras.data.files import list_files, pairs_from_names, read_split_list, require_directory
from danet_keras.data.labels import VOC_LABEL_MAP
from danet_keras.data.problems import SkipTally
from danet_keras.data.split import checked_file_split

AUG_LISTS = ("trainaug.txt", "train_aug.txt", "aug.txt")


def _sbd_mat_segmentation(contents):
    try:
        mat = scipy.io.loadmat(BytesIO(contents))
        segmentation = np.asarray(mat["GTcls"][0, 0]["Segmentation"], np.int32)
        if segmentation.ndim != 2:
            raise ValueError(f"Segmentation has shape {segmentation.shape}")
        return segmentation, b""
    except Exception as error:  # scipy raises several types for unreadable files
        return np.zeros((1, 1), np.int32), f"unreadable SBD .mat file ({error})".encode()


def read_label_png_or_sbd_mat(label_source, contents):
    """Label reader for mixed VOC PNG / SBD `.mat` splits (see `decode_pair`)."""

    def from_mat():
        raw, problem = tf.numpy_function(
            _sbd_mat_segmentation, [contents], (tf.int32, tf.string), stateful=False
        )
        return tf.ensure_shape(raw, [None, None]), tf.ensure_shape(problem, [])

    return tf.cond(
        tf.strings.regex_full_match(label_source, r".*\.mat"),
        from_mat,
        lambda: read_label_png(label_source, contents),
    )


def _aug_list(root, aug_dir):
    for name in AUG_LISTS:
        path = os.path.join(root, "ImageSets", "Segmentation", name)
        if os.path.isfile(path):
            return read_split_list(path)
    val = set(read_split_list(os.path.join(root, "ImageSets", "Segmentation", "val.txt")))
    names = [os.path.splitext(os.path.basename(p))[0] for p in list_files(aug_dir, (".png",))]
    return [n for n in names if n not in val]


def voc_dataset(root, split="train", sbd_root=None, skip_invalid=False, check_files=True):
    """Opens a split of PASCAL VOC 2012 segmentation.

    Args:
        root: `VOCdevkit/VOC2012`.
        split: "train", "val", "trainval" or "trainaug" (see the module docstring).
        sbd_root: SBD `benchmark_RELEASE/dataset` directory, for "trainaug"
            from `.mat` files; None uses `SegmentationClassAug`.
        skip_invalid: drop invalid examples with a warning instead of raising.
        check_files: True (or "header") reads every file header when opening;
            "full" decodes every file whole once (cached by path, size and
            mtime); False checks nothing eagerly. See `checked_file_split`.

    Returns:
        `DatasetSplit` of (image uint8 (H, W, 3), label uint8 (H, W)), 21
        classes, 255 ignored.
    """
    require_directory(root, "PASCAL VOC")
    images = os.path.join(
        require_directory(os.path.join(root, "JPEGImages"), "VOC image"), "{}.jpg"
    )
    where = f"pascal_voc {split} in {root}"
    tally = SkipTally(f"pascal_voc {split}")
    read_label = None
    if split != "trainaug":
        names = read_split_list(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"))
        labels = os.path.join(root, "SegmentationClass", "{}.png")
        pairs = pairs_from_names(names, images, labels, skip_invalid, tally, where)
    elif sbd_root is None:
        aug_dir = require_directory(
            os.path.join(root, "SegmentationClassAug"), "SegmentationClassAug"
        )
        names = _aug_list(root, aug_dir)
        pairs = pairs_from_names(
            names, images, os.path.join(aug_dir, "{}.png"), skip_invalid, tally, where
        )
    else:
        require_directory(os.path.join(sbd_root, "cls"), "SBD cls")
        segmentation = os.path.join(root, "ImageSets", "Segmentation")
        voc_train = read_split_list(os.path.join(segmentation, "train.txt"))
        voc_val = set(read_split_list(os.path.join(segmentation, "val.txt")))
        sbd = read_split_list(os.path.join(sbd_root, "train.txt"))
        sbd += read_split_list(os.path.join(sbd_root, "val.txt"))
        voc_label = os.path.join(root, "SegmentationClass", "{}.png")
        pairs = pairs_from_names(voc_train, images, voc_label, skip_invalid, tally, where)
        have = set(voc_train)
        sbd_only = sorted({n for n in sbd if n not in voc_val and n not in have})
        sbd_label = os.path.join(sbd_root, "cls", "{}.mat")
        pairs += pairs_from_names(sbd_only, images, sbd_label, skip_invalid, tally, where)
        read_label = read_label_png_or_sbd_mat
    return checked_file_split(
        dataset_info("pascal_voc"),
        split,
        pairs,
        VOC_LABEL_MAP,
        where,
        skip_invalid,
        tally,
        check_files,
        read_label,
    )
