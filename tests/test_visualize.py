import numpy as np
import pytest

from danet_keras.data import DATASETS
from danet_keras.visualize import colorize, legend, overlay


def test_colorize_uses_the_dataset_palette_and_blacks_out_ignore():
    labels = np.array([[0, 13, 255]])
    colours = colorize(labels, "cityscapes")
    assert colours.dtype == np.uint8 and colours.shape == (1, 3, 3)
    assert colours[0].tolist() == [[128, 64, 128], [0, 0, 142], [0, 0, 0]]
    assert colorize(labels[None], DATASETS["cityscapes"]).shape == (1, 1, 3, 3)
    assert colorize([[1]], [[1, 2, 3], [4, 5, 6]]).tolist() == [[[4, 5, 6]]]


def test_colorize_refuses_values_outside_the_palette():
    with pytest.raises(ValueError, match="label value 19 is outside"):
        colorize(np.array([[19]]), "cityscapes")
    with pytest.raises(ValueError, match="unknown dataset"):
        colorize(np.array([[0]]), "mnist")


def test_overlay_blends_and_leaves_ignored_pixels():
    image = np.full((1, 2, 3), 100, np.uint8)
    blended = overlay(image, np.array([[0, 255]]), "pascal_voc", alpha=0.5)
    assert blended[0, 0].tolist() == [50, 50, 50]  # VOC background is black
    assert blended[0, 1].tolist() == [100, 100, 100]
    assert overlay(image, np.array([[1, 1]]), "pascal_voc", alpha=1.0)[0, 0].tolist() == [128, 0, 0]
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, np.zeros((2, 2), int))


def test_legend_pairs_names_and_colours():
    entries = legend("cityscapes")
    assert len(entries) == 19 and entries[0] == ("road", (128, 64, 128))
    assert legend(["a"], [[1, 2, 3]]) == [("a", (1, 2, 3))]
