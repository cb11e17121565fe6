"""Class names, colour palettes and label-id maps of every supported dataset.

One place per dataset: readers take their `DatasetInfo` and raw-id lookup
tables from here, `danet_keras.visualize` takes the palettes.

A lookup table ("label map") is an int32 array of 256 entries indexed by the
value stored in a dataset's label PNG: a train id in [0, num_classes), the
ignore index 255, or `INVALID_ID` (-1) for a value the dataset never writes
(a reader reports such a pixel as an error that names the file).
"""

import collections
import dataclasses

import numpy as np

IGNORE_INDEX = 255
INVALID_ID = -1


def bit_interleaved_palette(num_colors=256):
    """The PASCAL VOC colour map: bits of the index spread over R, G and B.

    Class k gets the colour whose r, g, b bits (from the most significant)
    are bits 0, 1, 2; 3, 4, 5; ... of k. VOC's label PNGs embed exactly this
    palette; datasets without an official palette use it too.

    Args:
        num_colors: number of entries.

    Returns:
        (num_colors, 3) uint8 array.
    """
    palette = np.zeros((num_colors, 3), np.uint8)
    for index in range(num_colors):
        value, shift = index, 7
        while value:
            for channel in range(3):
                palette[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return palette


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a visualiser need to know about a dataset's classes.

    Attributes:
        name: dataset key in `DATASETS`.
        class_names: names of the train ids 0..num_classes-1.
        palette: (num_classes, 3) uint8 colours of the train ids.
        ignore_index: label value excluded from losses and metrics.
        description: where the data comes from, one line.
    """

    name: str
    class_names: tuple
    palette: np.ndarray = dataclasses.field(repr=False)
    ignore_index: int = IGNORE_INDEX
    description: str = ""

    def __post_init__(self):
        palette = np.asarray(self.palette, np.uint8)
        if palette.shape != (len(self.class_names), 3):
            raise ValueError(
                f"{self.name}: palette shape {palette.shape} does not match "
                f"{len(self.class_names)} classes"
            )
        object.__setattr__(self, "palette", palette)
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def num_classes(self):
        return len(self.class_names)


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

CityscapesLabel = collections.namedtuple("CityscapesLabel", ["name", "id", "train_id", "color"])

# The label table of cityscapesScripts (helpers/labels.py): every id with its
# train id (255 or -1 = not trained on) and colour.
CITYSCAPES_LABELS = (
    CityscapesLabel("unlabeled", 0, 255, (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, (0, 0, 0)),
    CityscapesLabel("rectification border", 2, 255, (0, 0, 0)),
    CityscapesLabel("out of roi", 3, 255, (0, 0, 0)),
    CityscapesLabel("static", 4, 255, (0, 0, 0)),
    CityscapesLabel("dynamic", 5, 255, (111, 74, 0)),
    CityscapesLabel("ground", 6, 255, (81, 0, 81)),
    CityscapesLabel("road", 7, 0, (128, 64, 128)),
    CityscapesLabel("sidewalk", 8, 1, (244, 35, 232)),
    CityscapesLabel("parking", 9, 255, (250, 170, 160)),
    CityscapesLabel("rail track", 10, 255, (230, 150, 140)),
    CityscapesLabel("building", 11, 2, (70, 70, 70)),
    CityscapesLabel("wall", 12, 3, (102, 102, 156)),
    CityscapesLabel("fence", 13, 4, (190, 153, 153)),
    CityscapesLabel("guard rail", 14, 255, (180, 165, 180)),
    CityscapesLabel("bridge", 15, 255, (150, 100, 100)),
    CityscapesLabel("tunnel", 16, 255, (150, 120, 90)),
    CityscapesLabel("pole", 17, 5, (153, 153, 153)),
    CityscapesLabel("polegroup", 18, 255, (153, 153, 153)),
    CityscapesLabel("traffic light", 19, 6, (250, 170, 30)),
    CityscapesLabel("traffic sign", 20, 7, (220, 220, 0)),
    CityscapesLabel("vegetation", 21, 8, (107, 142, 35)),
    CityscapesLabel("terrain", 22, 9, (152, 251, 152)),
    CityscapesLabel("sky", 23, 10, (70, 130, 180)),
    CityscapesLabel("person", 24, 11, (220, 20, 60)),
    CityscapesLabel("rider", 25, 12, (255, 0, 0)),
    CityscapesLabel("car", 26, 13, (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, (0, 60, 100)),
    CityscapesLabel("caravan", 29, 255, (0, 0, 90)),
    CityscapesLabel("trailer", 30, 255, (0, 0, 110)),
    CityscapesLabel("train", 31, 16, (0, 80, 100)),
    CityscapesLabel("motorcycle", 32, 17, (0, 0, 230)),
    CityscapesLabel("bicycle", 33, 18, (119, 11, 32)),
    CityscapesLabel("license plate", -1, -1, (0, 0, 142)),
)
CITYSCAPES_ID = {label.name: label.id for label in CITYSCAPES_LABELS}


def cityscapes_train_id(label_id):
    """Train id of a Cityscapes label id; 255 for every id not trained on (incl. -1)."""
    for label in CITYSCAPES_LABELS:
        if label.id == label_id:
            return label.train_id if 0 <= label.train_id < 255 else IGNORE_INDEX
    raise ValueError(f"{label_id} is not a Cityscapes label id")


_CITYSCAPES_TRAIN = sorted(
    (label.train_id, label) for label in CITYSCAPES_LABELS if 0 <= label.train_id < 255
)
# labelIds PNGs hold ids 0..33 (license plate, -1, is never drawn).
CITYSCAPES_LABEL_ID_MAP = label_map_from_pairs(
    (label.id, cityscapes_train_id(label.id)) for label in CITYSCAPES_LABELS if label.id >= 0
)
# labelTrainIds PNGs written by cityscapesScripts' createTrainIdLabelImgs.
CITYSCAPES_TRAIN_ID_MAP = identity_label_map(len(_CITYSCAPES_TRAIN))

# --- PASCAL VOC 2012 ----------------------------------------------------------------------------

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# SegmentationClass PNGs: palette indices 0..20, 255 on object boundaries ("void").
VOC_LABEL_MAP = identity_label_map(len(VOC_CLASSES))

# --- ADE20K SceneParsing (ADEChallengeData2016) --------------------------------------------------

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug",
    "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
# Annotations hold 0 (other/unlabelled) and 1..150; "reduce zero label": 0 -> 255, k -> k-1.
ADE20K_LABEL_MAP = reduce_zero_label_map(len(ADE20K_CLASSES))

# --- PASCAL Context, 59 classes -----------------------------------------------------------------

PASCAL_CONTEXT_CLASSES = (
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book",
    "bottle", "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth",
    "computer", "cow", "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food",
    "grass", "ground", "horse", "keyboard", "light", "motorbike", "mountain", "mouse",
    "person", "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves",
    "sidewalk", "sign", "sky", "snow", "sofa", "table", "track", "train", "tree", "truck",
    "tvmonitor", "wall", "water", "window", "wood",
)  # fmt: skip
# SegmentationClassContext PNGs (the Detail-API conversion used by mmsegmentation and
# PyTorch-Encoding): 0 = background (the 400+ other classes), 1..59 the classes.
PASCAL_CONTEXT_LABEL_MAP = reduce_zero_label_map(len(PASCAL_CONTEXT_CLASSES))

# --- COCO-Stuff (164k and 10k), 171 classes -------------------------------------------------------

COCO_STUFF_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush", "banner", "blanket", "branch", "bridge", "building-other", "bush",
    "cabinet", "cage", "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth",
    "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff",
    "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel",
    "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss",
    "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other",
    "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock",
    "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent",
    "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete",
    "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip
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

OXFORD_PET_CLASSES = ("background", "pet")
# Trimaps: 1 = pet, 2 = background, 3 = border ("don't care", ignored).
OXFORD_PET_LABEL_MAP = label_map_from_pairs([(1, 1), (2, 0), (3, IGNORE_INDEX)])

# --- The registry ------------------------------------------------------------------------------

_VOC_PALETTE = bit_interleaved_palette(256)

DATASETS = {
    "cityscapes": DatasetInfo(
        "cityscapes",
        [label.name for _, label in _CITYSCAPES_TRAIN],
        [label.color for _, label in _CITYSCAPES_TRAIN],
        description="Cityscapes fine annotations, 19 train ids (cityscapesScripts table)",
    ),
    "pascal_voc": DatasetInfo(
        "pascal_voc", VOC_CLASSES, _VOC_PALETTE[: len(VOC_CLASSES)],
        description="PASCAL VOC 2012 segmentation (optionally with the SBD 'aug' set)",
    ),
    "ade20k": DatasetInfo(
        "ade20k", ADE20K_CLASSES, _VOC_PALETTE[1 : len(ADE20K_CLASSES) + 1],
        description="ADE20K SceneParsing (ADEChallengeData2016), 150 classes, 0 ignored",
    ),
    "pascal_context": DatasetInfo(
        "pascal_context", PASCAL_CONTEXT_CLASSES,
        _VOC_PALETTE[1 : len(PASCAL_CONTEXT_CLASSES) + 1],
        description="PASCAL Context, 59 classes, background ignored",
    ),
    "coco_stuff": DatasetInfo(
        "coco_stuff", COCO_STUFF_CLASSES, _VOC_PALETTE[1 : len(COCO_STUFF_CLASSES) + 1],
        description="COCO-Stuff 164k / 10k, 171 classes",
    ),
    "oxford_iiit_pet": DatasetInfo(
        "oxford_iiit_pet", OXFORD_PET_CLASSES, [(0, 0, 0), (220, 20, 60)],
        description="Oxford-IIIT Pet trimaps: background, pet; border ignored",
    ),
}  # fmt: skip
