import logging

import numpy as np
import pytest

from danet_keras.data.classes import (
    DATASETS,
    bit_interleaved_palette,
    check_class_names,
    check_palette,
    dataset_classes,
    from_json,
    model_classes,
    resolve,
    to_json,
)


def test_names_and_colours_are_checked_against_the_class_count():
    assert check_class_names(["a", "b"], 2) == ("a", "b")
    assert check_palette(np.array([[0, 1, 2], [253, 254, 255]]), 2) == ((0, 1, 2), (253, 254, 255))
    assert check_class_names(None, 3) is None and check_palette(None, 3) is None
    for names in (["a"], ["a", ""], ["a", 3], "ab", ["a", "two\nlines"]):
        with pytest.raises(ValueError, match="class_names"):
            check_class_names(names, 2)
    for palette in ([[0, 0, 0]], [[0, 0, 0, 0], [1, 1, 1, 1]], [[0, 0, 256], [0, 0, 0]]):
        with pytest.raises(ValueError, match="palette"):
            check_palette(palette, 2)
    with pytest.raises(ValueError, match="integers"):
        check_palette([[0.5, 0, 0], [0, 0, 0]], 2)


def test_a_model_without_classes_gets_the_fallback_with_one_notice(caplog):
    class Bare:
        num_classes = 4

    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        classes = model_classes(Bare())
    assert classes.class_names == ("class_0", "class_1", "class_2", "class_3")
    np.testing.assert_array_equal(classes.palette, bit_interleaved_palette(4))
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "carries no class names or colours" in notices[0]


def test_names_without_colours_keep_the_names(caplog):
    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        classes = resolve(["sky", "road"], None, 2)
    assert classes.class_names == ("sky", "road")
    assert "no class colours" in caplog.records[0].getMessage()


def test_a_model_with_classes_gives_them_without_notice(caplog):
    class Trained:
        num_classes = 19
        class_names = DATASETS["cityscapes"].class_names
        palette = DATASETS["cityscapes"].palette

    with caplog.at_level(logging.WARNING, logger="danet_keras"):
        classes = model_classes(Trained())
    assert not caplog.records
    assert classes.class_names == DATASETS["cityscapes"].class_names
    np.testing.assert_array_equal(classes.palette, DATASETS["cityscapes"].palette)


def test_json_round_trip():
    classes = dataset_classes("cityscapes")
    names, palette = from_json(to_json(resolve(classes["class_names"], classes["palette"], 19)))
    assert list(names) == classes["class_names"]
    assert [list(colour) for colour in palette] == classes["palette"]
    assert (
        from_json(to_json(DATASETS["pascal_voc"]).encode())[0] == DATASETS["pascal_voc"].class_names
    )
