"""COCO-Stuff 164k and 10k, 171 classes.

Accepted preparations:

- 164k, converted (mmsegmentation's `coco_stuff164k.py`):
  `ROOT/images/{train2017,val2017}/*.jpg`,
  `ROOT/annotations/{train2017,val2017}/*_labelTrainIds.png` (0..170, 255).
- 164k, as downloaded (`stuffthingmaps_trainval2017.zip`, `label_type="stuffthingmaps"`):
  `ROOT/annotations/{train2017,val2017}/*.png` holding the 182 COCO ids
  0..181 (255 unlabelled), mapped here to 0..170 as the converter does.
- 10k, converted (mmsegmentation's `coco_stuff10k.py`):
  `ROOT/images/{train2014,test2014}/*.jpg`,
  `ROOT/annotations/{train2014,test2014}/*_labelTrainIds.png` (0..170, 255).
"""

import os

from danet_keras.data.classes import dataset_info
from danet_keras.data.files import list_files, pair_files, require_directory
from danet_keras.data.labels import COCO_STUFF_RAW_LABEL_MAP, COCO_STUFF_TRAIN_ID_MAP
from danet_keras.data.problems import SkipTally
from danet_keras.data.split import checked_file_split

LABEL_TYPES = {
    "labelTrainIds": ("_labelTrainIds.png", COCO_STUFF_TRAIN_ID_MAP),
    "stuffthingmaps": (".png", COCO_STUFF_RAW_LABEL_MAP),
}
SPLITS_164K = {"train": "train2017", "val": "val2017"}
SPLITS_10K = {"train": "train2014", "test": "test2014"}


def coco_stuff_dataset(
    root, split, label_type="labelTrainIds", skip_invalid=False, check_files=True
):
    """Opens a folder split of COCO-Stuff (see the module docstring for layouts).

    Args:
        root: directory holding `images/` and `annotations/`.
        split: folder name: "train2017", "val2017", "train2014" or "test2014".
        label_type: "labelTrainIds" (converted) or "stuffthingmaps" (raw 164k).
        skip_invalid: drop invalid examples with a warning instead of raising.
        check_files: True (or "header") reads every file header when opening;
            "full" decodes every file whole once (cached by path, size and
            mtime); False checks nothing eagerly. See `checked_file_split`.

    Returns:
        `DatasetSplit` of (image uint8 (H, W, 3), label uint8 (H, W)), 171
        classes, 255 ignored.
    """
    if label_type not in LABEL_TYPES:
        raise ValueError(f"label_type must be one of {sorted(LABEL_TYPES)}, got {label_type!r}")
    suffix, label_map = LABEL_TYPES[label_type]
    image_dir = require_directory(os.path.join(root, "images", split), "COCO-Stuff image")
    label_dir = require_directory(os.path.join(root, "annotations", split), "COCO-Stuff label")
    label_paths = list_files(label_dir, (suffix,))
    if label_type == "stuffthingmaps":
        label_paths = [p for p in label_paths if not p.endswith("_labelTrainIds.png")]
    where = f"coco_stuff {split} in {root}"
    tally = SkipTally(f"coco_stuff {split}")
    pairs = pair_files(
        list_files(image_dir, (".jpg",)),
        label_paths,
        lambda path: os.path.basename(path)[: -len(".jpg")],
        lambda path: os.path.basename(path)[: -len(suffix)],
        skip_invalid,
        tally,
        where,
    )
    return checked_file_split(
        dataset_info("coco_stuff"), split, pairs, label_map, where, skip_invalid, tally, check_files
    )


def coco_stuff164k_dataset(root, split="train", label_type="labelTrainIds", **kwargs):
    """COCO-Stuff 164k; split "train" or "val". See `coco_stuff_dataset`."""
    if split not in SPLITS_164K:
        raise ValueError(
            f"COCO-Stuff 164k split must be one of {sorted(SPLITS_164K)}, got {split!r}"
        )
    return coco_stuff_dataset(root, SPLITS_164K[split], label_type, **kwargs)


def coco_stuff10k_dataset(root, split="train", **kwargs):
    """COCO-Stuff 10k (converted layout); split "train" or "test". See `coco_stuff_dataset`."""
    if split not in SPLITS_10K:
        raise ValueError(f"COCO-Stuff 10k split must be one of {sorted(SPLITS_10K)}, got {split!r}")
    return coco_stuff_dataset(root, SPLITS_10K[split], "labelTrainIds", **kwargs)
