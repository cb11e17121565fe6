"""ADE20K SceneParsing (the 150-class MIT Scene Parsing benchmark).

    ROOT/ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
    ROOT/ADEChallengeData2016/annotations/{training,validation}/ADE_*.png

Annotations hold 0 ("other", not evaluated) and 1..150. As is customary
(mmsegmentation's `reduce_zero_label`), 0 becomes 255 and k becomes k - 1.
"""

import os

from danet_keras.data.classes import dataset_info
from danet_keras.data.files import list_files, pair_files, require_directory
from danet_keras.data.labels import ADE20K_LABEL_MAP
from danet_keras.data.problems import SkipTally
from danet_keras.data.split import checked_file_split

SPLITS = {"train": "training", "training": "training", "val": "validation",
          "validation": "validation"}  # fmt: skip


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def ade20k_dataset(root, split="train", skip_invalid=False, check_files=True):
    """Opens a split of ADE20K SceneParsing.

    Args:
        root: `ADEChallengeData2016` or the directory holding it.
        split: "train"/"training" or "val"/"validation".
        skip_invalid: drop invalid examples with a warning instead of raising.
        check_files: True (or "header") reads every file header when opening;
            "full" decodes every file whole once (cached by path, size and
            mtime); False checks nothing eagerly. See `checked_file_split`.

    Returns:
        `DatasetSplit` of (image uint8 (H, W, 3), label uint8 (H, W)), 150
        classes, 255 ignored.
    """
    if split not in SPLITS:
        raise ValueError(f"ADE20K split must be one of {sorted(SPLITS)}, got {split!r}")
    if os.path.isdir(os.path.join(root, "ADEChallengeData2016")):
        root = os.path.join(root, "ADEChallengeData2016")
    folder = SPLITS[split]
    image_dir = require_directory(os.path.join(root, "images", folder), "ADE20K image")
    label_dir = require_directory(os.path.join(root, "annotations", folder), "ADE20K annotation")
    where = f"ade20k {split} in {root}"
    tally = SkipTally(f"ade20k {split}")
    pairs = pair_files(
        list_files(image_dir, (".jpg",)),
        list_files(label_dir, (".png",)),
        _stem,
        _stem,
        skip_invalid,
        tally,
        where,
    )
    return checked_file_split(
        dataset_info("ade20k"),
        split,
        pairs,
        ADE20K_LABEL_MAP,
        where,
        skip_invalid,
        tally,
        check_files,
    )
