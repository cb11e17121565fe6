"""Named DANet configurations: the paper's models and mmsegmentation's model zoo.

A preset is a configuration, not weights: nothing is downloaded. Load trained
weights into it with `danet_keras.convert` (PyTorch checkpoints) or
`model.load_weights`. Reported mIoU figures are the sources' own, on the
dataset's validation split, single scale unless stated.
"""

PRESETS = {
    "danet_resnet50_cityscapes": {
        "description": "Paper ablation model: ResNet-50, OS 8, standard stem, official head.",
        "source": "Fu et al. 2019, Table 1",
        "reported": "76.34 mIoU Cityscapes val",
        "config": {
            "num_classes": 19,
            "backbone": "resnet50",
            "output_stride": 8,
            "stem": "standard",
            "align_corners": True,
        },
    },
    "danet_resnet101_cityscapes": {
        "description": "Official released model: ResNet-101, multi-grid (4, 8, 16), standard stem.",
        "source": "github junfu1115/DANet (--multi-grid --multi-dilation 4 8 16 --no-deepstem)",
        "reported": "79.93 val single scale; 81.50 val multi-scale + flip; 81.5 test",
        "config": {
            "num_classes": 19,
            "backbone": "resnet101",
            "output_stride": 8,
            "multi_grid": (4, 8, 16),
            "stem": "standard",
            "align_corners": True,
        },
    },
    "danet_resnet101_d8_cityscapes_769_mmseg": {
        "description": "mmsegmentation R-101-D8, 769x769 crops: deep stem (ResNetV1c), aux head.",
        "source": "mmsegmentation configs/danet",
        "reported": "80.47 Cityscapes val (82.02 multi-scale + flip)",
        "config": {
            "num_classes": 19,
            "backbone": "resnet101",
            "output_stride": 8,
            "stem": "deep",
            "stem_width": 32,
            "aux_head": True,
            "align_corners": True,
        },
    },
    "danet_resnet101_d8_ade20k_mmseg": {
        "description": "mmsegmentation R-101-D8 on ADE20K (150 classes), 512x512 crops.",
        "source": "mmsegmentation configs/danet",
        "reported": "43.64 ADE20K val",
        "config": {
            "num_classes": 150,
            "backbone": "resnet101",
            "output_stride": 8,
            "stem": "deep",
            "stem_width": 32,
            "aux_head": True,
            "align_corners": False,
        },
    },
    "danet_resnet101_d8_voc12aug_mmseg": {
        "description": "mmsegmentation R-101-D8 on PASCAL VOC 2012 + SBD aug (21 classes).",
        "source": "mmsegmentation configs/danet",
        "reported": "76.02 VOC 2012 val",
        "config": {
            "num_classes": 21,
            "backbone": "resnet101",
            "output_stride": 8,
            "stem": "deep",
            "stem_width": 32,
            "aux_head": True,
            "align_corners": False,
        },
    },
}


def preset_config(name, **overrides):
    """The DANet keyword arguments of preset `name`, updated with `overrides`."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; available: {sorted(PRESETS)}.")
    config = dict(PRESETS[name]["config"])
    config.update(overrides)
    return config
