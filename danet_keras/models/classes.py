"""The classes a segmentation model predicts: their names and colours.

A `DANet` carries them (`DANet(class_names=..., palette=...)`, set by
`danet_keras.train` from the dataset and by the checkpoint converter from the
release's dataset), and every artefact exported from it keeps them: `.keras`
files and preset directories in the model's config, a SavedModel in an asset
file and a `metadata` signature, a TFLite file in its metadata, an ONNX file in
its `metadata_props`, all as the JSON of `to_json`.

    classes = model_classes(model)   # a DatasetInfo: .class_names, .palette
    classes = model_classes(runner)  # the same for any exported artefact

A model without them gets `class_0 ... class_{K-1}` and the PASCAL VOC colour
map, with a one-line notice.
"""

import json
import logging

import numpy as np

from danet_keras.data.labels import DATASETS, DatasetInfo, bit_interleaved_palette

# The key under which TFLite metadata and ONNX `metadata_props` hold `to_json`.
METADATA_KEY = "danet_keras.classes"
# The SavedModel asset file and signature that hold them.
ASSET_FILE = "classes.json"
METADATA_SIGNATURE = "metadata"

logger = logging.getLogger("danet_keras")


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
    info = DATASETS[dataset] if isinstance(dataset, str) else dataset
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


def to_json(classes):
    """The JSON text that artefacts store: `{"class_names": [...], "palette": [[r, g, b], ...]}`."""
    return json.dumps(dataset_classes(classes), separators=(",", ":"))


def from_json(text):
    """(class_names, palette) from `to_json`'s text (str or bytes)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    data = json.loads(text)
    return tuple(data["class_names"]), tuple(tuple(c) for c in data["palette"])
