"""Helpers that write tiny datasets in the real on-disk layouts."""

import os

import numpy as np
import pytest
from PIL import Image


class TreeWriter:
    """Writes images and label maps, creating directories as needed."""

    def __init__(self, root):
        self.root = str(root)

    def path(self, *parts):
        path = os.path.join(self.root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def image(self, *parts, size=(6, 8), value=None, fmt=None):
        """An RGB image whose pixels encode their position (value=None) or a constant."""
        height, width = size
        if value is None:
            ys, xs = np.mgrid[0:height, 0:width]
            pixels = np.stack([ys * 10 % 256, xs * 10 % 256, np.full_like(ys, 77)], -1)
        else:
            pixels = np.full((height, width, 3), value)
        path = self.path(*parts)
        Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt, quality=95)
        return path

    def label(self, *parts, values, palette=None):
        """A grey (or palette, when `palette` is given) label PNG holding `values`."""
        array = np.asarray(values, np.uint8)
        image = Image.fromarray(array, "L" if palette is None else "P")
        if palette is not None:
            image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
        path = self.path(*parts)
        image.save(path)
        return path

    def text(self, *parts, lines):
        path = self.path(*parts)
        with open(path, "w") as f:
            f.write("".join(f"{line}\n" for line in lines))
        return path


@pytest.fixture
def tree(tmp_path):
    return TreeWriter(tmp_path)


def examples(split):
    """All (image, label) pairs of a DatasetSplit as numpy arrays, in file order."""
    return [(image.numpy(), label.numpy()) for image, label in split.dataset]


@pytest.fixture
def read_all():
    return examples
