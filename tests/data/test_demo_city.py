import filecmp
import os

import numpy as np

from danet_keras.cli.main import main
from danet_keras.data import DEMO_CLASSES, cityscapes_dataset, make_demo_city
from danet_keras.data.demo_city import render_scene
from danet_keras.data.labels import CITYSCAPES_ID, cityscapes_train_id
from danet_keras.utils.output_paths import MARKER


def tree_files(root):
    """The scene files under `root` (not the record of what danet-keras wrote there)."""
    return sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, fs in os.walk(root)
        for f in fs
        if f != MARKER
    )


def test_cli_writes_the_city_and_the_cityscapes_reader_reads_it(tmp_path, read_all):
    out = str(tmp_path / "city")
    assert (
        main(["make-demo-data", out, "--num-train", "3", "--num-val", "2", "--size", "48x96"]) == 0
    )
    train = cityscapes_dataset(out, "train")
    assert len(train) == 3 and len(cityscapes_dataset(out, "val")) == 2
    demo_train_ids = {cityscapes_train_id(CITYSCAPES_ID[name]) for name in DEMO_CLASSES}
    for image, label in read_all(train):
        assert image.shape == (48, 96, 3) and label.shape == (48, 96)
        assert set(np.unique(label)) <= demo_train_ids | {255}
    assert main(["make-demo-data", out, "--size", "big"]) == 2  # bad size: one-line error


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    first, second, other = (str(tmp_path / name) for name in ("a", "b", "c"))
    make_demo_city(first, num_train=2, num_val=1, size=(32, 64), seed=3)
    make_demo_city(second, num_train=2, num_val=1, size=(32, 64), seed=3)
    make_demo_city(other, num_train=2, num_val=1, size=(32, 64), seed=4)
    names = tree_files(first)
    assert names == tree_files(second) == tree_files(other) and len(names) == 6
    match, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
    assert match == names and not mismatch and not errors
    _, mismatch, _ = filecmp.cmpfiles(first, other, names, shallow=False)
    assert mismatch


def test_scenes_hold_the_street_classes_in_plausible_places():
    counts = {}
    for index in range(6):
        image, label = render_scene((0, 0, index), (64, 128))
        assert image.dtype == np.uint8 and label.shape == (64, 128)
        for value, count in zip(*np.unique(label, return_counts=True)):
            counts[int(value)] = counts.get(int(value), 0) + int(count)
        assert (label[0] != CITYSCAPES_ID["road"]).all()  # no road at the top row
        assert (label == CITYSCAPES_ID["sky"]).any()
    for name in ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole"):
        assert counts.get(CITYSCAPES_ID[name], 0) > 0, name
    assert counts.get(CITYSCAPES_ID["wall"], 0) + counts.get(CITYSCAPES_ID["fence"], 0) > 0


def test_road_sidewalk_and_terrain_are_not_separable_by_colour():
    # Mean colours of the ground classes overlap across scenes: no fixed colour decides the class.
    means = {name: [] for name in ("road", "sidewalk")}
    for index in range(12):
        image, label = render_scene((1, 0, index), (64, 128))
        for name in means:
            mask = label == CITYSCAPES_ID[name]
            if mask.any():
                means[name].append(image[mask].mean())
    road, walk = np.array(means["road"]), np.array(means["sidewalk"])
    assert road.min() < walk.max() and walk.min() < road.max()
