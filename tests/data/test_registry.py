"""The one dataset registry: every name the command line takes resolves through it."""

import pytest

from danet_keras.apps.demo import demo_training_config
from danet_keras.cli.main import build_parser
from danet_keras.cli.train import config_from_args
from danet_keras.data import READERS, TFDS_DATASETS
from danet_keras.data.classes import DATASETS, dataset_info
from danet_keras.data.registry import DATASET_REGISTRY, class_table_name, training_recipe
from danet_keras.training.config import TRAINING_RECIPES, resolve_config


def _dataset_choices(command):
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    parser = subparsers.choices[command]
    action = next(a for a in parser._actions if a.dest == "dataset")
    return action.choices


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_every_cli_dataset_name_resolves_through_the_registry(command):
    choices = _dataset_choices(command)
    names = [name for name in choices if not name.startswith("tfds:")]
    assert names and set(names) == set(READERS)
    for name in names:
        entry = DATASET_REGISTRY[name]
        assert entry.reader and READERS[name].__name__ == entry.reader.partition(":")[2]
        if name != "folder":  # the only one whose classes its user gives
            assert dataset_info(name) is DATASETS[class_table_name(name)]
        assert training_recipe(name)["crop_size"] > 0
    assert "tfds:scene_parse150" in choices and "kitti" not in choices and "tfds:" not in choices


def test_tables_are_views_of_the_registry():
    for tfds_name, (key, *_) in TFDS_DATASETS.items():
        assert DATASET_REGISTRY[key].tfds.name == tfds_name
    assert set(TRAINING_RECIPES) == set(DATASET_REGISTRY)
    assert dataset_info("demo_city") is DATASETS["cityscapes"]
    assert dataset_info("coco_stuff164k") is dataset_info("coco_stuff10k") is DATASETS["coco_stuff"]
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("folder")


def test_train_demo_city_and_the_demo_share_the_recipe(tmp_path):
    data_dir = str(tmp_path / "city")
    (tmp_path / "city" / "leftImg8bit" / "train").mkdir(parents=True)
    (tmp_path / "city" / "gtFine" / "val").mkdir(parents=True)  # not written: it "exists"
    arguments = build_parser().parse_args(
        ["train", "--dataset", "demo_city", "--data-dir", data_dir]
    )

    trained = resolve_config(config_from_args(arguments))
    demo = resolve_config(demo_training_config(data_dir))
    assert trained == demo
    assert (demo.learning_rate, demo.epochs, demo.model["backbone"]) == (0.03, 24, "resnet18")
    quick = resolve_config(demo_training_config(data_dir, quick=True))
    assert (quick.learning_rate, quick.data_options) == (demo.learning_rate, demo.data_options)
    assert (quick.epochs, quick.model["head_channels"]) == (1, 16)
