"""Named dilated ResNet configurations (`DilatedResNet.from_preset`).

The `resnet{depth}` presets are the torchvision / official DANet layout
(standard stem); `*_v1c` is mmsegmentation's ResNetV1c (deep stem of width
32); `*_imagenet` is the keras.applications layout, with its ImageNet weights.
Every preset is output stride 8, the paper's; pass `output_stride=16` or
`multi_grid=(4, 8, 16)` to `from_preset` to change it.
"""

from danet_keras.backbones.resnet import RESNET_DEPTHS

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
            "description": f"keras.applications ResNet{depth} layout with its ImageNet weights "
            "(downloaded by Keras when online).",
            "config": {"depth": depth, "block_layout": "keras"},
            "weights": "imagenet",
        }
        for depth in (50, 101, 152)
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
