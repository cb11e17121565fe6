import numpy as np
import pytest

from danet_keras.data import classes, labels

# cityscapesScripts helpers/labels.py: (id, trainId) for every label, license plate included.
OFFICIAL_CITYSCAPES = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255,
    11: 2, 12: 3, 13: 4, 14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8,
    22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17,
    33: 18, -1: -1,
}  # fmt: skip


def test_cityscapes_table_matches_the_official_one_for_all_35_labels():
    table = {label.id: label.train_id for label in labels.CITYSCAPES_LABELS}
    assert table == OFFICIAL_CITYSCAPES
    for label_id, train_id in OFFICIAL_CITYSCAPES.items():
        expected = 255 if train_id in (255, -1) else train_id
        assert labels.cityscapes_train_id(label_id) == expected
        if label_id >= 0:
            assert labels.CITYSCAPES_LABEL_ID_MAP[label_id] == expected
    # PNG values that are no Cityscapes id are invalid, not silently ignored.
    assert (labels.CITYSCAPES_LABEL_ID_MAP[34:] == labels.INVALID_ID).all()
    with pytest.raises(ValueError, match="not a Cityscapes label id"):
        labels.cityscapes_train_id(34)


def test_cityscapes_info_lists_the_19_classes_in_train_id_order():
    info = classes.DATASETS["cityscapes"]
    assert info.num_classes == 19
    assert info.class_names[:3] == ("road", "sidewalk", "building")
    assert info.class_names[-1] == "bicycle"
    assert tuple(info.palette[0]) == (128, 64, 128)
    assert info.ignore_index == 255


@pytest.mark.parametrize(
    "name, count",
    [("pascal_voc", 21), ("ade20k", 150), ("pascal_context", 59), ("coco_stuff", 171),
     ("oxford_iiit_pet", 2)],
)  # fmt: skip
def test_class_counts_and_palettes(name, count):
    info = classes.DATASETS[name]
    assert info.num_classes == count == len(set(info.class_names))
    assert info.palette.shape == (count, 3) and info.palette.dtype == np.uint8


def test_voc_palette_is_the_bit_interleaved_colour_map():
    palette = classes.bit_interleaved_palette(256)
    assert tuple(palette[1]) == (128, 0, 0)
    assert tuple(palette[15]) == (192, 128, 128)  # person
    assert tuple(palette[255]) == (224, 224, 192)  # boundary colour in VOC PNGs
    assert len({tuple(c) for c in palette}) == 256


def test_reduce_zero_label_and_coco_stuff_maps():
    ade = labels.ADE20K_LABEL_MAP
    assert ade[0] == 255 and ade[1] == 0 and ade[150] == 149 and ade[151] == labels.INVALID_ID
    raw = labels.COCO_STUFF_RAW_LABEL_MAP
    assert raw[0] == 0 and raw[10] == 10 and raw[12] == 11 and raw[181] == 170
    assert raw[255] == 255
    assert all(raw[i] == labels.INVALID_ID for i in labels.COCO_STUFF_UNUSED_IDS)
    assert sorted(raw[raw >= 0])[:-1] == list(range(171))


def test_dataset_info_rejects_a_palette_of_the_wrong_length():
    with pytest.raises(ValueError, match="palette shape"):
        classes.DatasetInfo("x", ("a", "b"), [(0, 0, 0)])
