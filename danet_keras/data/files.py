"""Listing the files of a split and pairing images with labels.

Every reader goes through these functions, so a missing directory, an empty
split, an image without a label or the reverse is caught the same way
everywhere (see `problems` for how a problem is raised or skipped); the
pairs are then checked up front by `file_check.check_pairs`.
"""

import os

from danet_keras.data.problems import kept_after

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_EMPTY = "empty split (no image/label pairs found)"


def require_directory(path, what):
    """Raises FileNotFoundError naming `what` when `path` is not a directory."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} directory not found: {path}")
    return path


def list_files(directory, suffixes, recursive=True):
    """Sorted paths under `directory` whose names end with one of `suffixes`.

    Args:
        directory: existing directory (FileNotFoundError otherwise).
        suffixes: tuple of endings, compared case-insensitively.
        recursive: descend into subdirectories (sorted, so the order is stable).

    Returns:
        list of paths.
    """
    require_directory(directory, "data")
    suffixes = tuple(s.lower() for s in suffixes)
    found = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith(suffixes))
        if not recursive:
            break
    return sorted(found)


def read_split_list(path):
    """Non-empty, stripped lines of a split file such as VOC's `train.txt`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split list not found: {path}")
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def pair_files(image_paths, label_paths, image_key, label_key, skip_invalid, tally, where):
    """Matches images to labels by key; unmatched files are errors.

    Args:
        image_paths, label_paths: lists of paths.
        image_key, label_key: path -> key that an image and its label share.
        skip_invalid: skip unmatched files (counted in `tally`) instead of raising.
        tally: `SkipTally`.
        where: split description for messages (e.g. "cityscapes train in /data/cs").

    Returns:
        sorted list of (image_path, label_path).
    """
    images = {image_key(p): p for p in image_paths}
    labels = {label_key(p): p for p in label_paths}
    problems = [
        f"{images[k]}: image has no label file" for k in sorted(images.keys() - labels.keys())
    ]
    problems += [
        f"{labels[k]}: label has no image file" for k in sorted(labels.keys() - images.keys())
    ]
    pairs = [(images[k], labels[k]) for k in sorted(images.keys() & labels.keys())]
    return kept_after(pairs, problems, skip_invalid, tally, where, _EMPTY)


def pairs_from_names(names, image_pattern, label_pattern, skip_invalid, tally, where):
    """(image, label) paths for the ids of a split list; missing files are errors.

    Args:
        names: example ids (e.g. from `read_split_list`).
        image_pattern, label_pattern: format strings with `{}` for the id.
        skip_invalid, tally, where: as in `pair_files`.

    Returns:
        list of (image_path, label_path) in the list's order.
    """
    pairs, problems = [], []
    for name in names:
        image, label = image_pattern.format(name), label_pattern.format(name)
        missing = [p for p in (image, label) if not os.path.isfile(p)]
        if missing:
            problems += [f"{p}: file listed in the split is missing" for p in missing]
        else:
            pairs.append((image, label))
    return kept_after(pairs, problems, skip_invalid, tally, where, _EMPTY)
