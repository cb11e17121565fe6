"""A plain folder of images and label PNGs, for users' own data.

    ROOT/images[/SPLIT]/**/NAME.{png,jpg,jpeg}
    ROOT/labels[/SPLIT]/**/NAME{label_suffix}.png     values 0..K-1, ignore_index

Images and labels pair by their path relative to the images/labels folder,
without extension (and without `label_suffix`).
"""

import os

from danet_keras.data.classes import DatasetInfo, bit_interleaved_palette
from danet_keras.data.files import IMAGE_EXTENSIONS, list_files, pair_files, require_directory
from danet_keras.data.labels import identity_label_map, reduce_zero_label_map
from danet_keras.data.problems import SkipTally
from danet_keras.data.registry import IGNORE_INDEX
from danet_keras.data.split import checked_file_split


def folder_dataset(
    root,
    split=None,
    class_names=None,
    palette=None,
    image_dir="images",
    label_dir="labels",
    label_suffix="",
    reduce_zero_label=False,
    ignore_values=(IGNORE_INDEX,),
    name="folder",
    skip_invalid=False,
    check_files=True,
):
    """Opens a folder dataset (see the module docstring for the layout).

    Args:
        root: dataset directory.
        split: subfolder of `image_dir` and `label_dir` ("train", "val", ...),
            None when the images lie directly in them.
        class_names: names of the classes, train id order (required).
        palette: (K, 3) colours; the VOC colour map when None.
        image_dir, label_dir: folder names under `root`.
        label_suffix: what label names add to the image's name
            (e.g. "_mask" for `a.jpg` / `a_mask.png`).
        reduce_zero_label: labels hold 0 = ignore and 1..K (0 -> 255, k -> k-1);
            `ignore_values` stay ignored.
        ignore_values: label values (other than 0..K-1) that mean "ignore".
        name: dataset name for messages and `DatasetInfo`.
        skip_invalid: drop invalid examples with a warning instead of raising.
        check_files: True (or "header") reads every file header when opening;
            "full" decodes every file whole once (cached by path, size and
            mtime); False checks nothing eagerly. See `checked_file_split`.

    Returns:
        `DatasetSplit` of (image uint8 (H, W, 3), label uint8 (H, W)).
    """
    if not class_names:
        raise ValueError("folder_dataset needs class_names (the names of train ids 0..K-1)")
    num_classes = len(class_names)
    if palette is None:
        palette = bit_interleaved_palette(256)[:num_classes]
    info = DatasetInfo(name, tuple(class_names), palette, description=f"folder {root}")
    if reduce_zero_label:
        label_map = reduce_zero_label_map(num_classes, ignore_values)
    else:
        label_map = identity_label_map(num_classes, ignore_values)
    parts = [split] if split else []
    images = require_directory(os.path.join(root, image_dir, *parts), f"{name} image")
    labels = require_directory(os.path.join(root, label_dir, *parts), f"{name} label")
    where = f"{name} {split or ''} in {root}".replace("  ", " ")
    tally = SkipTally(f"{name} {split or ''}".strip())
    suffix = label_suffix + ".png"

    def image_key(path):
        return os.path.splitext(os.path.relpath(path, images))[0]

    def label_key(path):
        return os.path.relpath(path, labels)[: -len(suffix)]

    pairs = pair_files(
        list_files(images, IMAGE_EXTENSIONS),
        list_files(labels, (suffix,)),
        image_key,
        label_key,
        skip_invalid,
        tally,
        where,
    )
    return checked_file_split(
        info, split or "all", pairs, label_map, where, skip_invalid, tally, check_files
    )
