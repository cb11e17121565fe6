"""Label-id maps of every supported dataset: raw PNG values -> train ids.

Readers take their raw-id lookup tables from here; the class names and
palettes are in the dataset registry (`danet_keras.data.registry`) and
`danet_keras.data.classes`.

A lookup table ("label map") is an int32 array of 256 entries indexed by the
value stored in a dataset's label PNG: a train id in [0, num_classes), the
ignore index 255, or `INVALID_ID` (-1) for a value the dataset never writes
(a reader reports such a pixel as an error that names the file).
"""

import numpy as np

from danet_keras.data.registry import (
    ADE20K_CLASSES,
    CITYSCAPES_LABELS,
    CITYSCAPES_TRAIN_LABELS,
    COCO_STUFF_CLASSES,
    IGNORE_INDEX,
    PASCAL_CONTEXT_CLASSES,
    VOC_CLASSES,
)

INVALID_ID = -1


def label_map_from_pairs(pairs):
    """A 256-entry lookup table from (raw value, train id) pairs; other values invalid.

    Args:
        pairs: iterable of (raw value in 0..255, train id or 255).

    Returns:
        (256,) int32 array.
    """
    table = np.full(256, INVALID_ID, np.int32)
    for raw, train_id in pairs:
        table[raw] = train_id
    return table


def identity_label_map(num_classes, ignore_values=(IGNORE_INDEX,)):
    """Values 0..num_classes-1 are train ids, `ignore_values` map to 255."""
    return label_map_from_pairs(
        [(k, k) for k in range(num_classes)] + [(v, IGNORE_INDEX) for v in ignore_values]
    )


def reduce_zero_label_map(num_classes, ignore_values=()):
    """0 (unlabelled/background) -> 255, k -> k - 1 for k = 1..num_classes.

    `ignore_values` (e.g. 255 in users' data) also map to 255.
    """
    return label_map_from_pairs(
        [(0, IGNORE_INDEX)]
        + [(k, k - 1) for k in range(1, num_classes + 1)]
        + [(v, IGNORE_INDEX) for v in ignore_values]
    )


# --- Cityscapes ---------------------------------------------------------------------------------

CITYSCAPES_ID = {label.name: label.id for label in CITYSCAPES_LABELS}


def cityscapes_train_id(label_id):
    """Train id of a Cityscapes label id; 255 for every id not trained on (incl. -1)."""
    for label in CITYSCAPES_LABELS:
        if label.id == label_id:
            return label.train_id if 0 <= label.train_id < 255 else IGNORE_INDEX
    raise ValueError(f"{label_id} is not a Cityscapes label id")


# labelIds PNGs hold ids 0..33 (license plate, -1, is never drawn).
CITYSCAPES_LABEL_ID_MAP = label_map_from_pairs(
    (label.id, cityscapes_train_id(label.id)) for label in CITYSCAPES_LABELS if label.id >= 0
)
# labelTrainIds PNGs written by cityscapesScripts' createTrainIdLabelImgs.
CITYSCAPES_TRAIN_ID_MAP = identity_label_map(len(CITYSCAPES_TRAIN_LABELS))

# --- PASCAL VOC 2012 ----------------------------------------------------------------------------

# SegmentationClass PNGs: palette indices 0..20, 255 on object boundaries ("void").
VOC_LABEL_MAP = identity_label_map(len(VOC_CLASSES))

# --- ADE20K SceneParsing (ADEChallengeData2016) --------------------------------------------------

# Annotations hold 0 (other/unlabelled) and 1..150; "reduce zero label": 0 -> 255, k -> k-1.
ADE20K_LABEL_MAP = reduce_zero_label_map(len(ADE20K_CLASSES))

# --- PASCAL Context, 59 classes -----------------------------------------------------------------

# SegmentationClassContext PNGs (the Detail-API conversion used by mmsegmentation and
# PyTorch-Encoding): 0 = background (the 400+ other classes), 1..59 the classes.
PASCAL_CONTEXT_LABEL_MAP = reduce_zero_label_map(len(PASCAL_CONTEXT_CLASSES))

# --- COCO-Stuff (164k and 10k), 171 classes -------------------------------------------------------

# The stuffthingmaps PNGs hold 0-based COCO category ids 0..181 (255 = unlabelled); these 11
# thing ids of the 2014 category list were dropped from COCO and never occur.
COCO_STUFF_UNUSED_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
COCO_STUFF_RAW_LABEL_MAP = label_map_from_pairs(
    [(raw, train_id) for train_id, raw in enumerate(
        i for i in range(182) if i not in COCO_STUFF_UNUSED_IDS)]
    + [(IGNORE_INDEX, IGNORE_INDEX)]
)  # fmt: skip
# `*_labelTrainIds.png` written by mmsegmentation's coco_stuff164k.py / coco_stuff10k.py.
COCO_STUFF_TRAIN_ID_MAP = identity_label_map(len(COCO_STUFF_CLASSES))

# --- Oxford-IIIT Pet (TFDS) ---------------------------------------------------------------------

# Trimaps: 1 = pet, 2 = background, 3 = border ("don't care", ignored).
OXFORD_PET_LABEL_MAP = label_map_from_pairs([(1, 1), (2, 0), (3, IGNORE_INDEX)])
