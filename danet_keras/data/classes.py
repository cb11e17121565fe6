"""The classes a segmentation model predicts: their names and colours (the one home).

The class tables of the datasets live in the dataset registry
(`danet_keras.data.registry`); this module turns them into `DatasetInfo`
(`DATASETS`), and resolves names and colours wherever they are asked for: a
dataset name, a `DatasetInfo`, an array of colours, a model, an artefact.

A `DANet` carries its classes (`DANet(class_names=..., palette=...)`, set by
`danet_keras.train` from the dataset and by the checkpoint converter from the
release's dataset), and every artefact exported from it keeps them: `.keras`
files and preset directories in the model's config, a SavedModel, a TFLite
file and an ONNX file as the JSON of `to_json` (`danet_keras.export.metadata`
has where each format keeps it).

    classes = model_classes(model)   # a DatasetInfo: .class_names, .palette
    classes = model_classes(runner)  # the same for any exported artefact
    names, colours = class_names_and_palette(palette="cityscapes")

A model without them gets `class_0 ... class_{K-1}` and the PASCAL VOC colour
map, with a one-line notice.
"""

import dataclasses
import json
import logging

import numpy as np

from danet_keras.data.registry import (
    DATASET_REGISTRY,
    IGNORE_INDEX,
    bit_interleaved_colours,
    class_table_name,
    class_table_names,
)

logger = logging.getLogger("danet_keras")


def bit_interleaved_palette(num_colors=256):
    """The PASCAL VOC colour map (`bit_interleaved_colours`) as a (num_colors, 3) uint8 array."""
    return np.asarray(bit_interleaved_colours(num_colors), np.uint8).reshape(num_colors, 3)


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


# The class tables of the registry, by the name of the entry that holds each.
DATASETS = {
    name: DatasetInfo(
        name,
        DATASET_REGISTRY[name].class_names,
        DATASET_REGISTRY[name].palette,
        DATASET_REGISTRY[name].ignore_index,
        DATASET_REGISTRY[name].description,
    )
    for name in class_table_names()
}


def dataset_info(dataset):
    """The `DatasetInfo` of a dataset name (an alias gives its class table's) or a `DatasetInfo`.

    Raises:
        ValueError: an unknown name, or one without a class table (e.g. "folder").
    """
    if not isinstance(dataset, str):
        return dataset
    table = class_table_name(dataset) if dataset in DATASET_REGISTRY else dataset
    if table not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    return DATASETS[table]


def check_class_names(class_names, num_classes):
    """`class_names` as a tuple of `num_classes` strings (None stays None).

    Raises:
        ValueError: not a sequence of `num_classes` non-empty strings.
    """
    if class_names is None:
        return None
    if isinstance(class_names, str):
        raise ValueError(f"`class_names` must be a list of names, got the string {class_names!r}.")
    names = tuple(class_names)
    # One line each: a SavedModel's label map has a name per line.
    if len(names) != num_classes or not all(
        isinstance(n, str) and n and "\n" not in n and "\r" not in n for n in names
    ):
        raise ValueError(
            f"`class_names` must be {num_classes} non-empty one-line strings, got "
            f"{len(names)}: {list(names)[:5]}{' ...' if len(names) > 5 else ''}."
        )
    return names


def check_palette(palette, num_classes):
    """`palette` as a tuple of `num_classes` (r, g, b) int tuples in [0, 255] (None stays None).

    Raises:
        ValueError: not of shape (num_classes, 3), or values outside [0, 255].
    """
    if palette is None:
        return None
    colours = np.asarray(palette)
    if colours.shape != (num_classes, 3) or not np.issubdtype(colours.dtype, np.number):
        raise ValueError(
            f"`palette` must be {num_classes} (r, g, b) colours, shape ({num_classes}, 3), got "
            f"shape {colours.shape}."
        )
    if np.any(colours != np.round(colours)) or colours.min() < 0 or colours.max() > 255:
        raise ValueError("`palette` colours must be integers in [0, 255].")
    return tuple(tuple(int(c) for c in colour) for colour in colours)


def fallback_class_names(num_classes):
    return tuple(f"class_{k}" for k in range(num_classes))


def fallback_palette(num_classes):
    """The PASCAL VOC colour map for `num_classes` classes."""
    return bit_interleaved_palette(max(int(num_classes), 1))[:num_classes]


def dataset_classes(dataset):
    """`{"class_names": ..., "palette": ...}` of a dataset name or `DatasetInfo`, for `DANet`."""
    info = dataset_info(dataset)
    return {
        "class_names": list(info.class_names),
        "palette": [[int(c) for c in colour] for colour in info.palette],
    }


def resolve(class_names, palette, num_classes, source="the model", notice=True):
    """A `DatasetInfo` of the given names and colours, filling in what is missing.

    Args:
        class_names: K names, or None.
        palette: (K, 3) colours, or None.
        num_classes: K.
        source: what the names come from, for the notice.
        notice: log one line when a fallback is used.

    Returns:
        A `DatasetInfo` (`name` "model", or "fallback" when neither was given).
    """
    class_names = check_class_names(class_names, num_classes)
    palette = check_palette(palette, num_classes)
    missing = [what for what, value in (("names", class_names), ("colours", palette)) if not value]
    if missing and notice:
        logger.warning(
            "danet-keras: %s carries no class %s; using %s (DANet(class_names=..., palette=...) "
            "or --palette set them).",
            source,
            " or ".join(missing),
            " and ".join(
                ([f"class_0 ... class_{num_classes - 1}"] if class_names is None else [])
                + (["the PASCAL VOC colours"] if palette is None else [])
            ),
        )
    return DatasetInfo(
        "fallback" if len(missing) == 2 else "model",
        class_names or fallback_class_names(num_classes),
        palette or fallback_palette(num_classes),
        description=f"classes of {source}",
    )


_ARTEFACT_NAMES = {
    "keras": "the model",
    "saved_model": "the SavedModel",
    "tflite": "the TFLite model",
    "onnx": "the ONNX model",
}


def model_classes(model, notice=True):
    """The names and colours of the classes of a model or an artefact's runner.

    Args:
        model: a `DANet` (or any object with `num_classes` or an output of K
            channels), or a runner of `danet_keras.export.runners`.
        notice: log one line when the model carries none.

    Returns:
        A `DatasetInfo`: `class_names`, `palette` (K, 3) uint8, `num_classes`.
    """
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        num_classes = int(model.output["logits"].shape[-1])
    return resolve(
        getattr(model, "class_names", None),
        getattr(model, "palette", None),
        num_classes,
        source=_ARTEFACT_NAMES.get(getattr(model, "format", "keras"), "the model"),
        notice=notice,
    )


# --- Names and colours for pictures ----------------------------------------------------------


def palette_of(palette_or_dataset):
    """(K, 3) uint8 palette from a dataset name, a `DatasetInfo` or an array."""
    if isinstance(palette_or_dataset, str):
        return dataset_info(palette_or_dataset).palette
    if hasattr(palette_or_dataset, "palette"):
        return palette_or_dataset.palette
    palette = np.asarray(palette_or_dataset)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"a palette has shape (K, 3), got {palette.shape}")
    return palette.astype(np.uint8)


def legend(class_names_or_dataset, palette=None):
    """[(class name, (r, g, b))] for a dataset name / `DatasetInfo`, or names plus a palette."""
    if isinstance(class_names_or_dataset, str) or hasattr(class_names_or_dataset, "class_names"):
        info = dataset_info(class_names_or_dataset)
        names, colours = info.class_names, info.palette
    else:
        names, colours = class_names_or_dataset, palette_of(palette)
    return [(name, tuple(int(c) for c in colour)) for name, colour in zip(names, colours)]


def class_names_and_palette(num_classes=None, class_names=None, palette=None, model=None):
    """The names and colours the figures give to K classes.

    Args:
        num_classes: K; None: the model's, else the length of `class_names`,
            else of the dataset that `palette` names.
        class_names: K names; None: the model's own, else the dataset's names
            when `palette` names a dataset, else `class_0` ... `class_{K-1}`.
        palette: a dataset name, a `DatasetInfo`, a (K, 3) colour array, or
            None: the model's own colours, else the PASCAL VOC colour map.
        model: None, or a `DANet` or an artefact's runner, whose class names
            and colours (`models.classes`) are the defaults; one that carries
            neither gets the fallback with a one-line notice. Anything without
            `num_classes` (a bare logits function) is ignored.

    Returns:
        `(names, colours)`: a list of K names and a (K, 3) uint8 array.

    Raises:
        ValueError: the names or colours are fewer than the classes.
    """
    # A bare callable (e.g. a logits function) carries no classes.
    if model is not None and hasattr(model, "num_classes"):
        carried = model_classes(model, notice=class_names is None and palette is None)
        num_classes = num_classes or carried.num_classes
        if getattr(model, "class_names", None) is not None or palette is None:
            class_names = carried.class_names if class_names is None else class_names
        if palette is None:
            palette = carried.palette
    dataset = None
    if isinstance(palette, str):
        dataset = dataset_info(palette)  # raises for an unknown name
    elif hasattr(palette, "class_names"):
        dataset = palette
    if num_classes is None:
        if class_names is not None:
            num_classes = len(class_names)
        elif dataset is not None:
            num_classes = dataset.num_classes
        else:
            raise ValueError("`num_classes` is needed without `class_names` or a dataset palette.")
    num_classes = int(num_classes)
    if class_names is None:
        class_names = (
            dataset.class_names
            if dataset is not None and dataset.num_classes >= num_classes
            else fallback_class_names(num_classes)
        )
    colours = fallback_palette(num_classes) if palette is None else palette_of(palette)
    if len(class_names) < num_classes or len(colours) < num_classes:
        raise ValueError(
            f"{num_classes} classes but {len(class_names)} names and {len(colours)} colours."
        )
    return list(class_names)[:num_classes], np.asarray(colours, np.uint8)[:num_classes]


def to_json(classes):
    """The JSON text that artefacts store: `{"class_names": [...], "palette": [[r, g, b], ...]}`."""
    return json.dumps(dataset_classes(classes), separators=(",", ":"))


def from_json(text):
    """(class_names, palette) from `to_json`'s text (str or bytes)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    data = json.loads(text)
    return tuple(data["class_names"]), tuple(tuple(c) for c in data["palette"])
