"""The one preset registry: named backbones and named DANet models.

`BACKBONE_PRESETS` are the dilated ResNets (`DilatedResNet.from_preset`, and
`DANet(backbone=NAME)`): the `resnet{depth}` presets are the torchvision /
official DANet layout (standard stem); `*_v1c` is mmsegmentation's ResNetV1c
(deep stem of width 32); `*_imagenet` is the keras.applications layout, with
its ImageNet weights (the only ImageNet weights here: the other layouts start
from random weights). Every backbone preset is output stride 8, the paper's;
pass `output_stride=16` or `multi_grid=(4, 8, 16)` to `from_preset` to change
it.

`PRESETS` are the published DANet models (`DANet.from_preset`). This table is
the one description of each published model. `DANet.from_preset`
builds them, `danet-keras train --preset` trains them with their dataset's
recipe, and the checkpoint converter reads from them what the weights cannot
tell (output stride, multi-grid, the upsampling convention) and which dataset a
checkpoint was trained on.

Each entry:
    description, source, reported: what it is and the source's own mIoU
        (validation split, single scale unless stated).
    dataset: the dataset it was trained on (a name of `danet_keras.data`).
    config: `DANet` keyword arguments.
    weights: None (no published weights), or where the published PyTorch
        checkpoint is: `arch` (`"official"` or `"mmseg"`), `url`,
        `file_pattern` (a substring of the released file's name), and either
        `hash`, the file's published hash (`danet_keras.utils.hashing`; the
        file then downloads on first use), or `manual`, why it cannot be
        fetched by its URL (then it is downloaded by hand).

`DANet.from_preset(NAME)` loads a preset's weights from the local preset cache.
A checkpoint with a `hash` is downloaded, checked, converted and installed
there on first use; any other is converted into it by hand with
`danet-keras convert CHECKPOINT --preset NAME`.
"""

import os

from danet_keras.data.classes import dataset_classes
from danet_keras.models.preset_io import cache_dir
from danet_keras.utils.architecture import RESNET_DEPTHS

# keras.applications' headless ResNet weights and their MD5s (keras/src/applications/resnet.py).
_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_KERAS_APPLICATIONS_NOTOP_MD5 = {
    50: "4d473c1dd8becc155b73f8504c6f6626",
    101: "88cf7a10940856eca736dc7b7e228a21",
    152: "ee4c566cf9a93f14d82f913c2dc6dd0c",
}

BACKBONE_PRESETS = {
    **{
        f"resnet{depth}": {
            "description": f"ResNet-{depth}, torchvision / official DANet layout, standard stem.",
            "config": {"depth": depth},
        }
        for depth in RESNET_DEPTHS
    },
    **{
        f"resnet{depth}_v1c": {
            "description": f"ResNet-{depth} V1c (mmsegmentation): deep stem of width 32.",
            "config": {"depth": depth, "stem": "deep", "stem_width": 32},
        }
        for depth in (50, 101)
    },
    **{
        f"resnet{depth}_imagenet": {
            "description": f"keras.applications ResNet{depth} layout with its ImageNet weights.",
            "config": {"depth": depth, "block_layout": "keras"},
            "weights": {
                "url": f"{_KERAS_APPLICATIONS}resnet{depth}_weights_tf_dim_ordering_tf_kernels"
                "_notop.h5",
                "hash": f"md5:{md5}",
            },
        }
        for depth, md5 in _KERAS_APPLICATIONS_NOTOP_MD5.items()
    },
}


def backbone_preset(name):
    """The entry of `BACKBONE_PRESETS` named `name`; a ValueError lists the names."""
    if name not in BACKBONE_PRESETS:
        raise ValueError(
            f"Unknown backbone preset {name!r}; available: {sorted(BACKBONE_PRESETS)} "
            "or a preset directory."
        )
    return BACKBONE_PRESETS[name]


def imagenet_backbone_preset(depth):
    """The name of the backbone preset with ImageNet weights of ResNet-`depth`, or None."""
    name = f"resnet{depth}_imagenet"
    return name if name in BACKBONE_PRESETS else None


_MMSEG = "https://download.openmmlab.com/mmsegmentation/v0.5/danet"
_MMSEG_R101 = {
    "num_classes": 19,
    "backbone": "resnet101",
    "output_stride": 8,
    "stem": "deep",
    "stem_width": 32,
    "aux_head": True,
    "align_corners": False,
}

PRESETS = {
    "danet_resnet50_cityscapes": {
        "description": "Paper ablation model: ResNet-50, OS 8, standard stem, official head.",
        "source": "Fu et al. 2019, Table 1",
        "reported": "76.34 mIoU Cityscapes val",
        "dataset": "cityscapes",
        "config": {
            "num_classes": 19,
            "backbone": "resnet50",
            "output_stride": 8,
            "stem": "standard",
            "align_corners": True,
        },
        "weights": None,
    },
    "danet_resnet101_cityscapes": {
        "description": "Official released model: ResNet-101, multi-grid (4, 8, 16), standard stem.",
        "source": "github junfu1115/DANet (--multi-grid --multi-dilation 4 8 16 --no-deepstem)",
        "reported": "79.93 val single scale; 81.50 val multi-scale + flip; 81.5 test",
        "dataset": "cityscapes",
        "config": {
            "num_classes": 19,
            "backbone": "resnet101",
            "output_stride": 8,
            "multi_grid": (4, 8, 16),
            "stem": "standard",
            "align_corners": True,
        },
        "weights": {
            "arch": "official",
            "url": "https://drive.google.com/open?id=1XmpFEF-tbPH0Rmv4eKRxYJngr3pTbj6p",
            "file_pattern": "DANet101",
            "manual": "Google Drive serves a file this large through a confirmation page, "
            "not at a plain URL",
        },
    },
    "danet_resnet101_d8_cityscapes_769_mmseg": {
        "description": "mmsegmentation R-101-D8, 769x769 crops, deep stem, aux head.",
        "source": "mmsegmentation configs/danet",
        "reported": "80.47 Cityscapes val (82.02 multi-scale + flip)",
        "dataset": "cityscapes",
        # mmsegmentation's 769x769 Cityscapes configs upsample with aligned corners.
        "config": dict(_MMSEG_R101, align_corners=True),
        "weights": {
            "arch": "mmseg",
            "url": f"{_MMSEG}/danet_r101-d8_769x769_80k_cityscapes/"
            "danet_r101-d8_769x769_80k_cityscapes_20200607_132918-f3a929e7.pth",
            "hash": "sha256:f3a929e7",  # from the file name
            "file_pattern": "769x769",
        },
    },
    "danet_resnet101_d8_cityscapes_512x1024_mmseg": {
        "description": "mmsegmentation R-101-D8, 512x1024 crops, deep stem, aux head.",
        "source": "mmsegmentation configs/danet",
        "reported": "80.41 Cityscapes val",
        "dataset": "cityscapes",
        "config": dict(_MMSEG_R101),
        "weights": {
            "arch": "mmseg",
            "url": f"{_MMSEG}/danet_r101-d8_512x1024_80k_cityscapes/"
            "danet_r101-d8_512x1024_80k_cityscapes_20200607_132918-955e6350.pth",
            "hash": "sha256:955e6350",  # from the file name
            "file_pattern": "512x1024",
        },
    },
    "danet_resnet101_d8_ade20k_mmseg": {
        "description": "mmsegmentation R-101-D8 on ADE20K (150 classes), 512x512 crops, 80k.",
        "source": "mmsegmentation configs/danet",
        "reported": "43.64 ADE20K val (45.19 multi-scale + flip)",
        "dataset": "ade20k",
        "config": dict(_MMSEG_R101, num_classes=150),
        "weights": {
            "arch": "mmseg",
            "url": f"{_MMSEG}/danet_r101-d8_512x512_80k_ade20k/"
            "danet_r101-d8_512x512_80k_ade20k_20200615_015126-d0357c73.pth",
            "hash": "sha256:d0357c73",  # from the file name
            "file_pattern": "ade20k",
        },
    },
    "danet_resnet101_d8_voc12aug_mmseg": {
        "description": "mmsegmentation R-101-D8 on PASCAL VOC 2012 + SBD aug (21 classes), 20k.",
        "source": "mmsegmentation configs/danet",
        "reported": "76.02 VOC 2012 val (77.23 multi-scale + flip)",
        "dataset": "pascal_voc",
        "config": dict(_MMSEG_R101, num_classes=21),
        "weights": {
            "arch": "mmseg",
            "url": f"{_MMSEG}/danet_r101-d8_512x512_20k_voc12aug/"
            "danet_r101-d8_512x512_20k_voc12aug_20200618_070026-d48d23b2.pth",
            "hash": "sha256:d48d23b2",  # from the file name
            "file_pattern": "voc12aug",
        },
    },
}

# The preset whose settings a checkpoint of each layout gets when its file name
# matches no preset: the official release, and mmsegmentation's common
# setting (output stride 8, no multi-grid, align_corners=False).
DEFAULT_PRESET_OF_ARCH = {
    "official": "danet_resnet101_cityscapes",
    "mmseg": "danet_resnet101_d8_cityscapes_512x1024_mmseg",
}


def preset(name):
    """The entry of `PRESETS` named `name`; a ValueError lists the names."""
    if name not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r}; available: {sorted(PRESETS)} or a preset directory."
        )
    return PRESETS[name]


def preset_classes(name, num_classes=None):
    """`{"class_names", "palette"}` of preset `name`'s dataset, for `DANet`.

    Empty when `num_classes` is given and differs from the dataset's class
    count (a checkpoint fine-tuned on other classes).
    """
    classes = dataset_classes(preset(name)["dataset"])
    if num_classes is not None and num_classes != len(classes["class_names"]):
        return {}
    return classes


def preset_config(name, **overrides):
    """The DANet keyword arguments of preset `name`, updated with `overrides`.

    They include the class names and colours of the preset's dataset, unless
    `overrides` changes the number of classes.
    """
    entry = preset(name)
    config = dict(entry["config"])
    config.update(overrides)
    classes = preset_classes(name, config["num_classes"])
    for key, value in classes.items():
        config.setdefault(key, value)
    return config


def preset_for_checkpoint(arch, file_name=None):
    """The name of the preset that describes a checkpoint of layout `arch`.

    The preset of that layout whose `file_pattern` occurs in the file's name,
    else the layout's default (`DEFAULT_PRESET_OF_ARCH`).
    """
    base = os.path.basename(str(file_name or ""))
    for name, entry in PRESETS.items():
        weights = entry["weights"]
        if weights and weights["arch"] == arch and base and weights["file_pattern"] in base:
            return name
    return DEFAULT_PRESET_OF_ARCH[arch]


def convert_command(name):
    """The command that installs a downloaded checkpoint of preset `name` by hand."""
    return f"`danet-keras convert FILE --preset {name}`"


def missing_weights_message(name):
    """Why the weights of named preset `name` cannot be downloaded, and how to install them."""
    weights = preset(name)["weights"]
    if not weights:
        return (
            f"Preset {name!r} has no published weights; use load_weights=False for a freshly "
            "initialised model, or train it (danet-keras train --preset ...)."
        )
    return (
        f"The weights of preset {name!r} are not installed in {cache_dir()}, and they cannot be "
        f"downloaded here: {weights['url']} ({weights['manual']}). Download the file in a "
        f"browser and install it with {convert_command(name)} (or pass load_weights=False for "
        "a freshly initialised model)."
    )
