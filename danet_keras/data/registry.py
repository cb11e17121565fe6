"""The one table of datasets: name -> classes, palette, ignore index, reader, TFDS name, recipe.

Every other module reads dataset facts from `DATASET_REGISTRY`:

- `danet_keras.data.classes` builds the `DatasetInfo` (names, palette,
  ignore index) of each class table, `danet_keras.data.DATASETS`;
- `danet_keras.data.load_dataset` finds a dataset's reader here, and
  `danet_keras.data.tfds` the TFDS datasets it reads;
- `danet_keras.training.config` takes a dataset's training recipe (crop,
  batch, learning rate, epochs; the demo city's also its model and
  augmentation) from here, and `danet-keras demo` the demo city's;
- the command line offers `dataset_names()` as `--dataset` choices.

An entry that reads another dataset's classes (`classes_of`: "demo_city"
draws Cityscapes' classes, "coco_stuff164k" and "coco_stuff10k" are the two
releases of "coco_stuff") is an alias of that class table, not a second table.

This module imports nothing but the standard library, so that
`danet-keras --help` can list the names without NumPy or TensorFlow.
"""

import collections
import copy
import dataclasses
from typing import Optional

IGNORE_INDEX = 255
TFDS_PREFIX = "tfds:"


def bit_interleaved_colours(num_colors=256):
    """The PASCAL VOC colour map: bits of the index spread over R, G and B.

    Class k gets the colour whose r, g, b bits (from the most significant)
    are bits 0, 1, 2; 3, 4, 5; ... of k. VOC's label PNGs embed exactly this
    palette; datasets without an official palette use it too.

    Args:
        num_colors: number of entries.

    Returns:
        tuple of `num_colors` (r, g, b) int tuples.
    """
    colours = []
    for index in range(num_colors):
        colour, value, shift = [0, 0, 0], index, 7
        while value:
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
        colours.append(tuple(colour))
    return tuple(colours)


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

CITYSCAPES_TRAIN_LABELS = sorted(
    (label.train_id, label) for label in CITYSCAPES_LABELS if 0 <= label.train_id < 255
)

# --- PASCAL VOC 2012 ----------------------------------------------------------------------------

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

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

# --- Oxford-IIIT Pet (TFDS) ---------------------------------------------------------------------

OXFORD_PET_CLASSES = ("background", "pet")

# --- Training recipes ---------------------------------------------------------------------------

# The paper's recipe (Fu et al. 2019, Sec. 4.1): batch 8 and lr 0.01 on
# Cityscapes, batch 16 elsewhere, 240 epochs (180 on COCO-Stuff) with
# multi-scale augmentation. ADE20K is not in the paper: mmsegmentation's
# 160k iterations at batch 16 are ~127 epochs of its 20,210 images.
# Any dataset without its own recipe (`"folder"`, `"tfds:<name>"`, `"custom"`): the
# paper's non-Cityscapes recipe.
GENERIC_RECIPE = {
    "crop_size": 512, "batch_size": 16, "learning_rate": 0.01, "epochs": 240,
    "source": "paper recipe for datasets other than Cityscapes "
    "(512 crop, batch 16, lr 0.01, 240 epochs)",
}  # fmt: skip
_COCO_STUFF_RECIPE = dict(
    GENERIC_RECIPE, epochs=180, source="paper recipe, 180 epochs on COCO-Stuff"
)
# `danet-keras demo` and `danet-keras train --dataset demo_city`: validation mIoU >= 0.52 in
# about 3 minutes of training on 2 AVX-512 cores (200 images of 128x256). Validating every
# second epoch (and the last) in batches of 8 rather than every epoch one image at a time took
# the demo's training from 235 s to 190 s (docs/performance.md).
_DEMO_CITY_RECIPE = {
    "model": {"backbone": "resnet18", "output_stride": 16, "align_corners": True},
    "crop_size": 128, "batch_size": 8, "learning_rate": 0.03, "epochs": 24,
    "validation_freq": 2, "val_batch_size": 8,
    "data_options": {"scale_range": (0.75, 1.5)},
    "source": "this package's synthetic demo city (ResNet-18, 128 crop, batch 8, lr 0.03, "
    "24 epochs)",
}  # fmt: skip

# --- The registry -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A TensorFlow Datasets dataset read as a registry entry.

    Attributes:
        name: the TFDS name (e.g. "scene_parse150").
        image_feature, label_feature: the features holding the image and label.
        label_map: name of the raw-id lookup table in `danet_keras.data.labels`.
    """

    name: str
    image_feature: str
    label_feature: str
    label_map: str


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """Everything this package knows about one dataset name.

    Attributes:
        name: the key in `DATASET_REGISTRY`.
        class_names: names of the train ids; None for an alias (`classes_of`)
            or a dataset whose classes its user gives (`"folder"`).
        palette: (r, g, b) colours of the train ids, as `class_names`.
        classes_of: the entry whose class table this one reads, or None.
        ignore_index: label value excluded from losses and metrics.
        description: where the data comes from, one line.
        reader: `"module:function"` of its reader (`load_dataset`), or None.
        tfds: a `TfdsSource` when TFDS provides it, or None.
        recipe: its training recipe (`TrainConfig` fields and a `source`
            line), or None for `GENERIC_RECIPE`.
    """

    name: str
    class_names: Optional[tuple] = None
    palette: Optional[tuple] = None
    classes_of: Optional[str] = None
    ignore_index: int = IGNORE_INDEX
    description: str = ""
    reader: Optional[str] = None
    tfds: Optional[TfdsSource] = None
    recipe: Optional[dict] = None


_VOC_COLOURS = bit_interleaved_colours(256)

DATASET_REGISTRY = {entry.name: entry for entry in (
    DatasetEntry(
        "cityscapes",
        tuple(label.name for _, label in CITYSCAPES_TRAIN_LABELS),
        tuple(label.color for _, label in CITYSCAPES_TRAIN_LABELS),
        description="Cityscapes fine annotations, 19 train ids (cityscapesScripts table)",
        reader="danet_keras.data.cityscapes:cityscapes_dataset",
        tfds=TfdsSource(
            "cityscapes/semantic_segmentation", "image_left", "segmentation_label",
            "CITYSCAPES_LABEL_ID_MAP"),
        recipe=dict(
            crop_size=768, batch_size=8, learning_rate=0.01, epochs=240,
            source="paper Sec. 4.1 / official code (768 crop, batch 8, lr 0.01, 240 epochs)",
        ),
    ),
    DatasetEntry(
        "demo_city", classes_of="cityscapes",
        description="this package's synthetic city in the Cityscapes layout (`make_demo_city`)",
        reader="danet_keras.data.cityscapes:cityscapes_dataset",
        recipe=_DEMO_CITY_RECIPE,
    ),
    DatasetEntry(
        "pascal_voc", VOC_CLASSES, _VOC_COLOURS[: len(VOC_CLASSES)],
        description="PASCAL VOC 2012 segmentation (optionally with the SBD 'aug' set)",
        reader="danet_keras.data.voc:voc_dataset",
    ),
    DatasetEntry(
        "ade20k", ADE20K_CLASSES, _VOC_COLOURS[1 : len(ADE20K_CLASSES) + 1],
        description="ADE20K SceneParsing (ADEChallengeData2016), 150 classes, 0 ignored",
        reader="danet_keras.data.ade20k:ade20k_dataset",
        tfds=TfdsSource("scene_parse150", "image", "annotation", "ADE20K_LABEL_MAP"),
        recipe=dict(
            GENERIC_RECIPE, epochs=127,
            source="mmsegmentation danet ade20k (512 crop, batch 16, lr 0.01, 160k iterations)",
        ),
    ),
    DatasetEntry(
        "pascal_context", PASCAL_CONTEXT_CLASSES,
        _VOC_COLOURS[1 : len(PASCAL_CONTEXT_CLASSES) + 1],
        description="PASCAL Context, 59 classes, background ignored",
        reader="danet_keras.data.context:pascal_context_dataset",
    ),
    DatasetEntry(
        "coco_stuff", COCO_STUFF_CLASSES, _VOC_COLOURS[1 : len(COCO_STUFF_CLASSES) + 1],
        description="COCO-Stuff 164k / 10k, 171 classes",
        recipe=_COCO_STUFF_RECIPE,
    ),
    DatasetEntry(
        "coco_stuff164k", classes_of="coco_stuff",
        description="COCO-Stuff 164k (stuffthingmaps or mmsegmentation's train ids)",
        reader="danet_keras.data.coco_stuff:coco_stuff164k_dataset",
        recipe=_COCO_STUFF_RECIPE,
    ),
    DatasetEntry(
        "coco_stuff10k", classes_of="coco_stuff",
        description="COCO-Stuff 10k (mmsegmentation's conversion)",
        reader="danet_keras.data.coco_stuff:coco_stuff10k_dataset",
        recipe=_COCO_STUFF_RECIPE,
    ),
    DatasetEntry(
        "oxford_iiit_pet", OXFORD_PET_CLASSES, ((0, 0, 0), (220, 20, 60)),
        description="Oxford-IIIT Pet trimaps: background, pet; border ignored",
        tfds=TfdsSource("oxford_iiit_pet", "image", "segmentation_mask", "OXFORD_PET_LABEL_MAP"),
    ),
    DatasetEntry(
        "folder",
        description="your own images and label PNGs in two folders (class names given)",
        reader="danet_keras.data.folder:folder_dataset",
    ),
)}  # fmt: skip


def dataset_entry(name):
    """The registry entry of a dataset name.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in DATASET_REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASET_REGISTRY)}")
    return DATASET_REGISTRY[name]


def class_table_name(name):
    """The entry whose class names and palette a dataset uses (itself, or its `classes_of`)."""
    return dataset_entry(name).classes_of or name


def class_table_names():
    """Names of the entries that hold a class table of their own."""
    return [name for name, entry in DATASET_REGISTRY.items() if entry.class_names is not None]


def reader_names():
    """Sorted names that `load_dataset` opens with a reader (besides `"tfds:<name>"`)."""
    return sorted(name for name, entry in DATASET_REGISTRY.items() if entry.reader)


def tfds_sources():
    """{TFDS name: registry entry} of the datasets read from TensorFlow Datasets."""
    return {entry.tfds.name: entry for entry in DATASET_REGISTRY.values() if entry.tfds}


def training_recipe(name):
    """A copy of the training recipe of a dataset name (`GENERIC_RECIPE` without its own).

    `"tfds:<name>"`, `"custom"` and unknown names get `GENERIC_RECIPE`.
    """
    entry = DATASET_REGISTRY.get(name)
    recipe = entry.recipe if entry is not None and entry.recipe else GENERIC_RECIPE
    return copy.deepcopy(recipe)
