import json

import pytest

from danet_keras.training.config import TRAINING_RECIPES, TrainConfig, resolve_config


def test_recipes_fill_unset_fields_and_overrides_win():
    config = resolve_config(dataset="cityscapes")
    assert (config.crop_size, config.batch_size, config.learning_rate) == (768, 8, 0.01)
    assert (config.momentum, config.weight_decay, config.poly_power, config.head_lr_multiplier) == (
        0.9,
        1e-4,
        0.9,
        10.0,
    )
    assert config.sync_batchnorm and config.backup
    config = resolve_config(TrainConfig(dataset="ade20k"), batch_size=4)
    assert (config.crop_size, config.batch_size) == (512, 4)
    assert resolve_config({"dataset": "tfds:scene_parse150"}).crop_size == 512
    assert set(TRAINING_RECIPES) >= {
        "cityscapes",
        "ade20k",
        "pascal_voc",
        "pascal_context",
        "demo_city",
    }


def test_config_is_json_serialisable():
    assert json.loads(resolve_config(dataset="demo_city").to_json())["dataset"] == "demo_city"


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"dataset": "kitti"}, "dataset"),
        ({"preset": "danet_resnet42"}, "Unknown preset"),
        ({"model": "resnet50"}, "`model` must be a dict"),
        ({"strategy": "parameter_server"}, "strategy"),
        ({"batch_size": 0}, "batch_size"),
        ({"crop_size": -1}, "crop_size"),
        ({"epochs": 1.5}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"backup_freq": "hourly"}, "backup_freq"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"momentum": 1.5}, "momentum"),
        ({"batchsize": 8}, "Unknown training settings"),
        (
            {"preset": "danet_resnet101_cityscapes", "model": {"backbone_weights": "imagenet"}},
            "preset_weights=False",
        ),
    ],
)
def test_bad_settings_fail_with_the_name(overrides, match):
    with pytest.raises(ValueError, match=match):
        resolve_config(**overrides)


def test_a_model_preset_gives_the_dataset_and_the_model():
    from danet_keras.training.trainer import build_model

    config = resolve_config(
        preset="danet_resnet101_d8_ade20k_mmseg",
        preset_weights=False,  # its configuration only
        model={"aux_head": False, "head_channels": 8, "backbone": "resnet18"},
    )
    assert config.dataset == "ade20k" and config.crop_size == 512  # the ADE20K recipe
    model = build_model(config, 150)
    assert model.backbone.stem == "deep" and model.backbone.stem_width == 32  # the preset's
    assert model.backbone.depth == 18 and model.aux_head is False  # the overrides
    assert not model.remat
    assert build_model(resolve_config(config, remat=True), 150).backbone.remat
    small = {"backbone": "resnet18", "head_channels": 8}
    assert build_model(resolve_config(dataset="ade20k", remat=True, model=small), 150).remat
    assert resolve_config(preset="danet_resnet101_cityscapes", dataset="demo_city").dataset == (
        "demo_city"
    )


def test_validated_epochs_end_with_the_last():
    from danet_keras.training.config import validated_epochs

    assert validated_epochs(24, 2) == list(range(2, 25, 2))
    assert validated_epochs(5, 2) == [2, 4, 5]
    assert validated_epochs(1, 3) == [1]
    assert validated_epochs(3, 1) == [1, 2, 3]


def test_a_recipe_sets_how_it_validates_unless_told_otherwise():

    demo = resolve_config({"dataset": "demo_city", "data_dir": "x"})
    assert (demo.validation_freq, demo.val_batch_size) == (2, 8)
    told = resolve_config(
        {"dataset": "demo_city", "data_dir": "x", "validation_freq": 1, "val_batch_size": 1}
    )
    assert (told.validation_freq, told.val_batch_size) == (1, 1)
    other = resolve_config({"dataset": "cityscapes", "data_dir": "x"})
    assert (other.validation_freq, other.val_batch_size) == (1, None)


def test_a_validation_batch_the_replicas_cannot_split_is_refused_before_training(tmp_path):
    import types

    from danet_keras.training.trainer import train

    three_replicas = types.SimpleNamespace(num_replicas_in_sync=3)
    config = {"dataset": "demo_city", "data_dir": "x", "output_dir": str(tmp_path / "run")}
    # The demo_city recipe validates in batches of 8.
    with pytest.raises(ValueError, match=r"^`val_batch_size` 8 is the global batch; .* 3 repl"):
        train(config, strategy=three_replicas, batch_size=6)
    with pytest.raises(ValueError, match=r"^`batch_size` 8 is the global batch"):
        train(config, strategy=three_replicas)
    assert not (tmp_path / "run").exists()
