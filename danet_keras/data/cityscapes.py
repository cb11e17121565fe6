"""Cityscapes in its official layout.

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png

Label ids map to the 19 train ids by the cityscapesScripts label table
(`danet_keras.data.labels.CITYSCAPES_LABELS`); ids not trained on become 255.
`label_type="labelTrainIds"` reads the `*_labelTrainIds.png` files that
cityscapesScripts' `createTrainIdLabelImgs` writes instead.
"""

import os

from danet_keras.data.classes import dataset_info
from danet_keras.data.files import list_files, pair_files, require_directory
from danet_keras.data.labels import CITYSCAPES_LABEL_ID_MAP, CITYSCAPES_TRAIN_ID_MAP
from danet_keras.data.problems import SkipTally
from danet_keras.data.split import checked_file_split

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_MAPS = {"labelIds": CITYSCAPES_LABEL_ID_MAP, "labelTrainIds": CITYSCAPES_TRAIN_ID_MAP}


def cityscapes_dataset(
    root,
    split="train",
    annotation="gtFine",
    label_type="labelIds",
    skip_invalid=False,
    check_files=True,
):
    """Opens a split of Cityscapes (or of the demo city, which has the same layout).

    Args:
        root: directory holding `leftImg8bit/` and `gtFine/`.
        split: "train", "val", "test" (or "train_extra" with gtCoarse).
        annotation: "gtFine" or "gtCoarse".
        label_type: "labelIds" (mapped to train ids) or "labelTrainIds".
        skip_invalid: drop invalid examples with a warning instead of raising.
        check_files: True (or "header") reads every file header when opening;
            "full" decodes every file whole once (cached by path, size and
            mtime); False checks nothing eagerly. See `checked_file_split`.

    Returns:
        `DatasetSplit` yielding (image uint8 (H, W, 3), label uint8 (H, W))
        with the 19 train ids and 255.
    """
    if label_type not in LABEL_MAPS:
        raise ValueError(f"label_type must be one of {sorted(LABEL_MAPS)}, got {label_type!r}")
    image_dir = require_directory(os.path.join(root, "leftImg8bit", split), "Cityscapes image")
    label_dir = require_directory(os.path.join(root, annotation, split), "Cityscapes label")
    label_suffix = f"_{annotation}_{label_type}.png"
    where = f"cityscapes {split} in {root}"
    tally = SkipTally(f"cityscapes {split}")

    def key(suffix, directory):
        return lambda path: os.path.relpath(path, directory)[: -len(suffix)]

    pairs = pair_files(
        list_files(image_dir, (IMAGE_SUFFIX,)),
        list_files(label_dir, (label_suffix,)),
        key(IMAGE_SUFFIX, image_dir),
        key(label_suffix, label_dir),
        skip_invalid,
        tally,
        where,
    )
    return checked_file_split(
        dataset_info("cityscapes"),
        split,
        pairs,
        LABEL_MAPS[label_type],
        where,
        skip_invalid,
        tally,
        check_files,
    )
