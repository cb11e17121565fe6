import numpy as np
import pytest

pytest.importorskip("torch")

from danet_keras.convert import config_from_state_dict, detect_arch, model_config  # noqa: E402
from danet_keras.models.presets import PRESETS  # noqa: E402


@pytest.mark.parametrize("arch", ["official", "mmseg"])
@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_depth_is_read_from_the_block_counts(meta_state_dict, arch, depth):
    state = meta_state_dict(arch, num_classes=3, backbone=f"resnet{depth}")
    assert config_from_state_dict(state)["backbone"] == f"resnet{depth}"


def test_official_deep_stem_classes_and_head(meta_state_dict):
    state = meta_state_dict("official", num_classes=19, backbone="resnet101", stem="deep")
    assert config_from_state_dict(state) == {
        "num_classes": 19,
        "backbone": "resnet101",
        "stem": "deep",
        "stem_width": 64,
        "aux_head": False,
        "head_channels": 512,
        "attention_reduction": 8,
    }


def test_mmseg_deep_stem_and_auxiliary_head(meta_state_dict):
    state = meta_state_dict(
        "mmseg", num_classes=150, backbone="resnet50", stem="deep", aux_head=True
    )
    config = config_from_state_dict(state, "mmseg")
    assert config["stem"] == "deep" and config["stem_width"] == 32
    assert config["aux_head"] is True and config["aux_channels"] == 256
    assert config["num_classes"] == 150
    standard = config_from_state_dict(meta_state_dict("mmseg", num_classes=3, backbone="resnet50"))
    assert standard["stem"] == "standard" and standard["stem_width"] is None
    assert standard["aux_head"] is False


def test_another_architecture_is_named_in_the_error(meta_state_dict):
    # A torchvision-style classification ResNet: no DANet head at all.
    resnet = {
        k[len("pretrained.") :]: v
        for k, v in meta_state_dict("official", num_classes=3).items()
        if k.startswith("pretrained.")
    }
    resnet["fc.weight"] = np.zeros((1000, 512))
    with pytest.raises(
        ValueError, match="Not a DANet checkpoint.*top-level names are bn1, conv1, fc"
    ):
        detect_arch(resnet)
    # An mmsegmentation PSPNet: right prefixes, another head.
    pspnet = {
        k: v
        for k, v in meta_state_dict("mmseg", num_classes=3).items()
        if k.startswith("backbone.")
    }
    pspnet["decode_head.psp_modules.0.1.conv.weight"] = np.zeros((512, 2048, 1, 1))
    pspnet["decode_head.bottleneck.conv.weight"] = np.zeros((512, 4096, 3, 3))
    with pytest.raises(ValueError, match="its head has bottleneck, psp_modules"):
        config_from_state_dict(pspnet)


def test_asking_for_the_wrong_layout_names_the_right_one(meta_state_dict):
    state = meta_state_dict("official", num_classes=3)
    with pytest.raises(ValueError, match="official DANet checkpoint.*arch='official'"):
        config_from_state_dict(state, arch="mmseg")
    with pytest.raises(ValueError, match="`arch` must be"):
        config_from_state_dict(state, arch="caffe")


def test_model_config_precedence_and_sources(meta_state_dict):
    state = meta_state_dict("official", num_classes=19, backbone="resnet101")
    arch, config, sources = model_config(state)
    assert arch == "official"
    official = PRESETS["danet_resnet101_cityscapes"]["config"]
    assert config["multi_grid"] == official["multi_grid"] == (4, 8, 16)
    assert config["align_corners"] is True
    assert sources["align_corners"] == "preset danet_resnet101_cityscapes"
    assert config["backbone"] == "resnet101" and sources["backbone"] == "checkpoint"
    _, config, sources = model_config(state, multi_grid=(), align_corners=False, num_classes=None)
    assert config["multi_grid"] is None and sources["multi_grid"] == "argument"
    assert config["align_corners"] is False
    assert config["num_classes"] == 19 and sources["num_classes"] == "checkpoint"
    _, config, _ = model_config(meta_state_dict("mmseg", num_classes=3, stem="deep", aux_head=True))
    assert config["align_corners"] is False and config["multi_grid"] is None and config["aux_head"]


def test_the_release_dataset_names_the_classes(meta_state_dict):
    from danet_keras.data.classes import DATASETS

    # The official release (Cityscapes, 19 classes) and mmsegmentation's ADE20K model.
    _, config, sources = model_config(meta_state_dict("official", num_classes=19))
    assert tuple(config["class_names"]) == DATASETS["cityscapes"].class_names
    np.testing.assert_array_equal(config["palette"], DATASETS["cityscapes"].palette)
    assert sources["class_names"] == "preset danet_resnet101_cityscapes's dataset"
    state = meta_state_dict("mmseg", num_classes=150, stem="deep")
    _, config, _ = model_config(state, file_name="danet_r101-d8_512x512_80k_ade20k.pth")
    assert tuple(config["class_names"]) == DATASETS["ade20k"].class_names
    # Fine-tuned on other classes: no names are made up.
    _, config, _ = model_config(meta_state_dict("official", num_classes=3))
    assert "class_names" not in config and "palette" not in config


def test_mmseg_769x769_files_upsample_with_aligned_corners(meta_state_dict):
    state = meta_state_dict("mmseg", num_classes=19, stem="deep", aux_head=True)
    name = "checkpoints/danet_r50-d8_769x769_40k_cityscapes_20200530_025703-76681c60.pth"
    _, config, sources = model_config(state, file_name=name)
    assert config["align_corners"] is True
    assert sources["align_corners"] == "preset danet_resnet101_d8_cityscapes_769_mmseg"
    _, config, _ = model_config(state, file_name=name, align_corners=False)
    assert config["align_corners"] is False
    _, config, _ = model_config(state, file_name="danet_r50-d8_512x1024_40k_cityscapes.pth")
    assert config["align_corners"] is False
    official = meta_state_dict("official", num_classes=19)
    assert (
        model_config(official, file_name="x_769x769.pth")[2]["align_corners"]
        == "preset danet_resnet101_cityscapes"
    )
