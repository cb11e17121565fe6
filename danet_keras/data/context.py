"""PASCAL Context, 59 classes.

Accepted preparation: the label PNGs made with the Detail API, as
mmsegmentation's `tools/dataset_converters/pascal_context.py` writes them
(the same 59-class mapping as PyTorch-Encoding, which the official DANet
used):

    ROOT/JPEGImages/{id}.jpg
    ROOT/SegmentationClassContext/{id}.png      0 = background, 1..59 the classes
    ROOT/ImageSets/SegmentationContext/{train,val}.txt

ROOT is `VOCdevkit/VOC2010`. Background (the other 400+ classes) is ignored
and class k becomes k - 1 (mmsegmentation's `PascalContextDataset59`).
"""

import os

from danet_keras.data.classes import dataset_info
from danet_keras.data.files import pairs_from_names, read_split_list, require_directory
from danet_keras.data.labels import PASCAL_CONTEXT_LABEL_MAP
from danet_keras.data.problems import SkipTally
from danet_keras.data.split import checked_file_split


def pascal_context_dataset(root, split="train", skip_invalid=False, check_files=True):
    """Opens a split of PASCAL Context (59 classes).

    Args:
        root: `VOCdevkit/VOC2010`.
        split: "train" or "val".
        skip_invalid: drop invalid examples with a warning instead of raising.
        check_files: True (or "header") reads every file header when opening;
            "full" decodes every file whole once (cached by path, size and
            mtime); False checks nothing eagerly. See `checked_file_split`.

    Returns:
        `DatasetSplit` of (image uint8 (H, W, 3), label uint8 (H, W)), 59
        classes, 255 ignored.
    """
    require_directory(root, "PASCAL Context")
    require_directory(os.path.join(root, "SegmentationClassContext"), "SegmentationClassContext")
    names = read_split_list(os.path.join(root, "ImageSets", "SegmentationContext", f"{split}.txt"))
    where = f"pascal_context {split} in {root}"
    tally = SkipTally(f"pascal_context {split}")
    pairs = pairs_from_names(
        names,
        os.path.join(root, "JPEGImages", "{}.jpg"),
        os.path.join(root, "SegmentationClassContext", "{}.png"),
        skip_invalid,
        tally,
        where,
    )
    return checked_file_split(
        dataset_info("pascal_context"),
        split,
        pairs,
        PASCAL_CONTEXT_LABEL_MAP,
        where,
        skip_invalid,
        tally,
        check_files,
    )
