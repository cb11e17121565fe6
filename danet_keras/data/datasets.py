"""`load_dataset`: one entry point for every reader, by name (`danet_keras.data.registry`)."""

import importlib

from danet_keras.data.registry import DATASET_REGISTRY, TFDS_PREFIX, reader_names
from danet_keras.data.tfds import tfds_dataset


def _reader(name):
    module, _, function = DATASET_REGISTRY[name].reader.partition(":")
    return getattr(importlib.import_module(module), function)


# name -> reader(root, split, **kwargs), the registry's readers. "demo_city" is
# Cityscapes-format data written by `make_demo_city`.
READERS = {name: _reader(name) for name in reader_names()}


def load_dataset(name, root=None, split="train", **kwargs):
    """Opens a split of a dataset by name.

    Args:
        name: a key of `READERS`, or "tfds:<TFDS name>" (e.g.
            "tfds:scene_parse150"), for which `root` is the TFDS `data_dir`.
        root: the dataset's directory (see each reader's docstring).
        split: split name as the reader knows it.
        **kwargs: passed to the reader (`skip_invalid`, `check_files` True,
            "full" or False, ...).

    Returns:
        `DatasetSplit`.
    """
    if name.startswith(TFDS_PREFIX):
        return tfds_dataset(name[len(TFDS_PREFIX) :], split=split, data_dir=root, **kwargs)
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(READERS)} or 'tfds:<name>'")
    if root is None:
        raise ValueError(f"dataset {name!r} needs its root directory")
    return READERS[name](root, split, **kwargs)
