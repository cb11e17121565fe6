"""The DANet configuration a checkpoint needs: read from its tensors, or the published settings.

What the tensors tell (shapes and key names): the backbone depth (blocks per
stage), the stem (standard 7x7 or deep, and its width), the number of
classes, the head's width and attention reduction, and the auxiliary head.
What they cannot tell (no weight depends on it): output stride, multi-grid
dilations and the upsampling convention. Those come from the preset that
describes the published model (`danet_keras.models.presets`, the one table of
published configurations):

- official (github junfu1115/DANet): `danet_resnet101_cityscapes`, the
  released DANet-101, evaluated with `--multi-grid --multi-dilation 4 8 16
  --os 8 --no-deepstem` and upsampling with `align_corners=True`.
- mmsegmentation: the preset whose release file name the checkpoint's name
  matches (`*769x769*` Cityscapes files: `align_corners=True`), else
  ResNetV1c-D8 at output stride 8, no multi-grid, `align_corners=False`.

Models trained with other settings need them passed explicitly.
"""

import re

from danet_keras.models.conversion.names import ARCH_NAMES, ARCHS, PREFIXES
from danet_keras.models.presets import preset_classes, preset_config, preset_for_checkpoint
from danet_keras.utils.architecture import RESNET_DEPTHS

# What a checkpoint's preset contributes: the settings no weight depends on.
SETTINGS_FROM_PRESET = ("output_stride", "multi_grid", "align_corners")
# Keys whose presence identifies each layout's DANet head.
_HEAD_MARKERS = {
    "official": ("head.sa.query_conv.weight", "head.conv5a.0.weight"),
    "mmseg": ("decode_head.pam.query_project.weight", "decode_head.pam_in_conv.conv.weight"),
}


def _top_level_names(state_dict, limit=8):
    names = sorted({key.split(".")[0] for key in state_dict})
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def detect_arch(state_dict):
    """`"official"` or `"mmseg"`, from the state dict's key names.

    Args:
        state_dict: mapping of parameter names to tensors.

    Returns:
        The layout name.

    Raises:
        ValueError: the keys are those of neither DANet layout (another
            architecture, or not a segmentation checkpoint).
    """
    for arch in ARCHS:
        if any(marker in state_dict for marker in _HEAD_MARKERS[arch]):
            return arch
    heads = sorted(
        {key.split(".")[1] for key in state_dict if key.startswith(("head.", "decode_head."))}
    )
    if heads:
        found = f"its head has {', '.join(heads[:8])}"
    else:
        found = f"its top-level names are {_top_level_names(state_dict)}"
    raise ValueError(
        "Not a DANet checkpoint: expected the official layout (pretrained.*, head.sa.*, "
        "head.conv5a.*) or mmsegmentation's (backbone.*, decode_head.pam.*, "
        f"decode_head.pam_in_conv.*); {found}."
    )


def resolve_arch(state_dict, arch):
    """The layout of `state_dict`: `arch` checked against its keys, or detected for "auto"."""
    if arch == "auto":
        return detect_arch(state_dict)
    if arch not in ARCHS:
        raise ValueError(f"`arch` must be 'auto' or one of {ARCHS}, got {arch!r}.")
    if not any(marker in state_dict for marker in _HEAD_MARKERS[arch]):
        other = detect_arch(state_dict)  # raises when it is neither layout
        marker = next(m for m in _HEAD_MARKERS[other] if m in state_dict)
        raise ValueError(
            f"arch={arch!r} was asked for, but this is a {ARCH_NAMES[other]} checkpoint "
            f"(it has {marker}): pass arch={other!r} or 'auto'."
        )
    return arch


def _shape(state_dict, key):
    if key not in state_dict:
        raise ValueError(
            f"The checkpoint lacks {key!r}, which every DANet checkpoint of this layout has."
        )
    return tuple(state_dict[key].shape)


def _backbone(state_dict, prefix):
    pattern = re.compile(re.escape(prefix) + r"layer([1-4])\.(\d+)\.")
    blocks = [0, 0, 0, 0]
    for key in state_dict:
        match = pattern.match(key)
        if match:
            stage, block = int(match.group(1)) - 1, int(match.group(2))
            blocks[stage] = max(blocks[stage], block + 1)
    block_type = "bottleneck" if f"{prefix}layer1.0.conv3.weight" in state_dict else "basic"
    for depth, (known_type, known_blocks) in RESNET_DEPTHS.items():
        if known_type == block_type and tuple(known_blocks) == tuple(blocks):
            return f"resnet{depth}"
    raise ValueError(
        f"The backbone ({prefix}layer1-4) has {tuple(blocks)} {block_type} blocks per stage, "
        f"which is no ResNet depth of {sorted(RESNET_DEPTHS)}."
    )


def config_from_state_dict(state_dict, arch="auto"):
    """The `DANet` arguments a state dict determines.

    Args:
        state_dict: mapping of parameter names to tensors or arrays (see
            `read_state_dict`).
        arch: `"auto"`, `"official"` or `"mmseg"`.

    Returns:
        A dict with `num_classes`, `backbone`, `stem`, `stem_width` (None
        for the standard stem), `aux_head`, `aux_channels` (with the
        auxiliary head), `head_channels` and `attention_reduction`. Output
        stride, multi-grid and `align_corners` are not in the weights; see
        `model_config`.

    Raises:
        ValueError: not a DANet checkpoint of that layout.
    """
    arch = resolve_arch(state_dict, arch)
    prefixes = PREFIXES[arch]
    backbone = prefixes["backbone"]
    if arch == "official":
        deep_stem_key = f"{backbone}conv1.0.weight"
        classifier = "head.conv8.1.weight"
        reduce, query = "head.conv5a.0.weight", "head.sa.query_conv.weight"
    else:
        deep_stem_key = f"{backbone}stem.0.weight"
        classifier = "decode_head.conv_seg.weight"
        reduce, query = (
            "decode_head.pam_in_conv.conv.weight",
            "decode_head.pam.query_project.weight",
        )
    head_channels = _shape(state_dict, reduce)[0]
    key_channels = _shape(state_dict, query)[0]
    if head_channels % key_channels:
        raise ValueError(
            f"The position attention projects {head_channels} channels to {key_channels} "
            f"({query}); DANet needs a whole reduction factor."
        )
    deep = deep_stem_key in state_dict
    config = {
        "num_classes": _shape(state_dict, classifier)[0],
        "backbone": _backbone(state_dict, backbone),
        "stem": "deep" if deep else "standard",
        "stem_width": _shape(state_dict, deep_stem_key)[0] if deep else None,
        "aux_head": any(key.startswith(prefixes.get("aux", "\0")) for key in state_dict),
        "head_channels": head_channels,
        "attention_reduction": head_channels // key_channels,
    }
    if config["aux_head"]:
        config["aux_channels"] = _shape(state_dict, "auxiliary_head.convs.0.conv.weight")[0]
    return config


def model_config(state_dict, arch="auto", file_name=None, preset=None, **overrides):
    """The full `DANet` configuration for a checkpoint, and where each value came from.

    Precedence: `overrides` (values that are not None), then what the state
    dict determines (`config_from_state_dict`), then the settings of the
    preset that describes the checkpoint: `preset` when given, else found by
    layout and file name (`preset_for_checkpoint`).

    Args:
        state_dict: mapping of parameter names to tensors or arrays.
        arch: `"auto"`, `"official"` or `"mmseg"`.
        file_name: the checkpoint's file name, if any.
        preset: the name of the preset this checkpoint is (None: found from
            the layout and the file name).
        **overrides: `DANet` arguments; None means "not given". Pass
            `multi_grid=()` for no multi-grid.

    Returns:
        `(arch, config, sources)`: the layout, the `DANet` keyword arguments,
        and for each argument where it came from: `"argument"`,
        `"checkpoint"` or `"preset <name>"`.
    """
    arch = resolve_arch(state_dict, arch)
    preset = preset or preset_for_checkpoint(arch, file_name)
    from_preset = {key: preset_config(preset).get(key) for key in SETTINGS_FROM_PRESET}
    from_checkpoint = config_from_state_dict(state_dict, arch)
    # The release's dataset names the classes, when the checkpoint has as many.
    from_dataset = preset_classes(preset, from_checkpoint["num_classes"])
    config, sources = {}, {}
    layers = (
        (from_preset, f"preset {preset}"),
        (from_dataset, f"preset {preset}'s dataset"),
        (from_checkpoint, "checkpoint"),
        ({k: v for k, v in overrides.items() if v is not None}, "argument"),
    )
    for values, source in layers:
        for key, value in values.items():
            config[key] = value
            sources[key] = source
    if config.get("multi_grid") == ():
        config["multi_grid"] = None
    if config.get("stem") == "standard":
        config["stem_width"] = None
    return arch, config, sources
