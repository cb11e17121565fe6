"""`load_dataset`: one entry point for every reader, by name."""

from danet_keras.data.ade20k import ade20k_dataset
from danet_keras.data.cityscapes import cityscapes_dataset
from danet_keras.data.coco_stuff import coco_stuff10k_dataset, coco_stuff164k_dataset
from danet_keras.data.context import pascal_context_dataset
from danet_keras.data.folder import folder_dataset
from danet_keras.data.tfds import tfds_dataset
from danet_keras.data.voc import voc_dataset

# name -> reader(root, split, **kwargs). "demo_city" is Cityscapes-format data
# written by `make_demo_city`.
READERS = {
    "cityscapes": cityscapes_dataset,
    "demo_city": cityscapes_dataset,
    "pascal_voc": voc_dataset,
    "ade20k": ade20k_dataset,
    "pascal_context": pascal_context_dataset,
    "coco_stuff164k": coco_stuff164k_dataset,
    "coco_stuff10k": coco_stuff10k_dataset,
    "folder": folder_dataset,
}


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
    if name.startswith("tfds:"):
        return tfds_dataset(name[len("tfds:") :], split=split, data_dir=root, **kwargs)
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(READERS)} or 'tfds:<name>'")
    if root is None:
        raise ValueError(f"dataset {name!r} needs its root directory")
    return READERS[name](root, split, **kwargs)
