"""Which PyTorch tensor each Keras weight of a DANet comes from.

Two checkpoint layouts (`arch`):

- `"official"`: github.com/junfu1115/DANet. Backbone under `pretrained.`,
  head under `head.` (`conv5a`, `sa`, `conv51`, `conv6`, ... `conv8`).
- `"mmseg"`: mmsegmentation. Backbone under `backbone.` (deep stem
  `stem.*`), head under `decode_head.` (`pam_in_conv.conv`, `pam.*_project`,
  `pam.gamma.scale`, ...), FCN auxiliary head under `auxiliary_head.`.

The Keras layer names are those of CONTRIBUTING.md ("Weight names").
"""

import dataclasses
import re

import keras

from danet_keras.layers.attention import ChannelAttention, PositionAttention

ARCHS = ("official", "mmseg")
ARCH_NAMES = {"official": "official DANet", "mmseg": "mmsegmentation"}
PREFIXES = {
    "official": {"backbone": "pretrained.", "head": "head."},
    "mmseg": {"backbone": "backbone.", "head": "decode_head.", "aux": "auxiliary_head."},
}
# Tensors a checkpoint may hold that no segmentation computation reads:
# BatchNorm's batch counters, and the ImageNet classifier of the backbone,
# which the official 2018 code (that trained the released DANet-101) kept in
# `pretrained.fc`.
BOOKKEEPING_SUFFIXES = (".num_batches_tracked",)
UNUSED_BY_SEGMENTATION = {"official": ("pretrained.fc.weight", "pretrained.fc.bias"), "mmseg": ()}


def is_ignored(key, arch):
    """Whether checkpoint tensor `key` is one that no DANet computation reads."""
    return key.endswith(BOOKKEEPING_SUFFIXES) or key in UNUSED_BY_SEGMENTATION[arch]


# Keras stem layer -> module path under the backbone prefix.
_STEM_MODULES = {
    "official": {
        "stem_conv": "conv1",
        "stem_bn": "bn1",
        # The official deep stem: conv1 = Sequential(conv, bn, relu, conv,
        # bn, relu, conv), followed by bn1.
        "stem_conv1": "conv1.0",
        "stem_bn1": "conv1.1",
        "stem_conv2": "conv1.3",
        "stem_bn2": "conv1.4",
        "stem_conv3": "conv1.6",
        "stem_bn3": "bn1",
    },
    "mmseg": {
        "stem_conv": "conv1",
        "stem_bn": "bn1",
        # ResNetV1c: stem = Sequential(conv, bn, relu) x 3.
        "stem_conv1": "stem.0",
        "stem_bn1": "stem.1",
        "stem_conv2": "stem.3",
        "stem_bn2": "stem.4",
        "stem_conv3": "stem.6",
        "stem_bn3": "stem.7",
    },
}
_BLOCK_LAYER = re.compile(r"stage(\d)_block(\d+)_(conv\d|bn\d|downsample_conv|downsample_bn)")
_BLOCK_PARTS = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}

# Keras head layer -> (prefix key, module path) per arch.
_HEAD_MODULES = {
    "official": {
        "position_reduce_conv": ("head", "conv5a.0"),
        "position_reduce_bn": ("head", "conv5a.1"),
        "position_attention": ("head", "sa"),
        "position_project_conv": ("head", "conv51.0"),
        "position_project_bn": ("head", "conv51.1"),
        "channel_reduce_conv": ("head", "conv5c.0"),
        "channel_reduce_bn": ("head", "conv5c.1"),
        "channel_attention": ("head", "sc"),
        "channel_project_conv": ("head", "conv52.0"),
        "channel_project_bn": ("head", "conv52.1"),
        "fused_classifier": ("head", "conv8.1"),
        "position_classifier": ("head", "conv6.1"),
        "channel_classifier": ("head", "conv7.1"),
    },
    "mmseg": {
        "position_reduce_conv": ("head", "pam_in_conv.conv"),
        "position_reduce_bn": ("head", "pam_in_conv.bn"),
        "position_attention": ("head", "pam"),
        "position_project_conv": ("head", "pam_out_conv.conv"),
        "position_project_bn": ("head", "pam_out_conv.bn"),
        "channel_reduce_conv": ("head", "cam_in_conv.conv"),
        "channel_reduce_bn": ("head", "cam_in_conv.bn"),
        "channel_attention": ("head", "cam"),
        "channel_project_conv": ("head", "cam_out_conv.conv"),
        "channel_project_bn": ("head", "cam_out_conv.bn"),
        "fused_classifier": ("head", "conv_seg"),
        "position_classifier": ("head", "pam_conv_seg"),
        "channel_classifier": ("head", "cam_conv_seg"),
        "aux_conv": ("aux", "convs.0.conv"),
        "aux_bn": ("aux", "convs.0.bn"),
        "aux_classifier": ("aux", "conv_seg"),
    },
}

# The position attention's projections: Keras weight prefix -> module name.
_PROJECTIONS = {
    "official": {"query": "query_conv", "key": "key_conv", "value": "value_conv"},
    "mmseg": {"query": "query_project", "key": "key_project", "value": "value_project"},
}
# The attention scale: official `gamma` (shape (1,)), mmcv `Scale` (shape ()).
_SCALE = {"official": "gamma", "mmseg": "gamma.scale"}
_BATCHNORM = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """Where one Keras weight comes from.

    Attributes:
        keras_name: `layer/weight`, backbone layers as `backbone/layer/weight`.
        torch_key: the state-dict key.
        kind: how the tensor becomes the Keras value: `"conv_kernel"`
            ((out, in, kh, kw) -> (kh, kw, in, out)), `"projection_kernel"`
            ((out, in, 1, 1) -> (in, out)), `"scalar"` (one element -> ()),
            or `"copy"`.
    """

    keras_name: str
    torch_key: str
    kind: str


def torch_module(layer_name, arch, in_backbone):
    """The PyTorch module path of a Keras layer, or None when it has no counterpart.

    Args:
        layer_name: the Keras layer's name.
        arch: `"official"` or `"mmseg"`.
        in_backbone: whether the layer belongs to the nested backbone model.

    Returns:
        The full module path (with the backbone / head prefix), or None.
    """
    if in_backbone:
        prefix = PREFIXES[arch]["backbone"]
        if layer_name in _STEM_MODULES[arch]:
            return prefix + _STEM_MODULES[arch][layer_name]
        match = _BLOCK_LAYER.fullmatch(layer_name)
        if match is None:
            return None
        stage, block, part = match.groups()
        return f"{prefix}layer{stage}.{block}.{_BLOCK_PARTS.get(part, part)}"
    if layer_name not in _HEAD_MODULES[arch]:
        return None
    group, path = _HEAD_MODULES[arch][layer_name]
    return PREFIXES[arch][group] + path


def _torch_suffix(layer, variable_name, arch):
    """(state-dict key suffix, kind) of one weight of `layer`; (None, None) if none."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return _BATCHNORM.get(variable_name), "copy"
    if isinstance(layer, keras.layers.Conv2D):
        return {"kernel": ("weight", "conv_kernel"), "bias": ("bias", "copy")}.get(
            variable_name, (None, None)
        )
    if isinstance(layer, ChannelAttention) and variable_name == "beta":
        return _SCALE[arch], "scalar"
    if isinstance(layer, PositionAttention):
        if variable_name == "gamma":
            return _SCALE[arch], "scalar"
        projection, _, part = variable_name.partition("_")
        if projection in _PROJECTIONS[arch] and part in ("kernel", "bias"):
            kind = "projection_kernel" if part == "kernel" else "copy"
            return (
                f"{_PROJECTIONS[arch][projection]}.{'weight' if part == 'kernel' else 'bias'}",
                kind,
            )
    return None, None


def _layer_sources(layer, arch, in_backbone):
    module = torch_module(layer.name, arch, in_backbone)
    keras_prefix = f"backbone/{layer.name}" if in_backbone else layer.name
    pairs, unknown = [], []
    for variable in layer.weights:
        keras_name = f"{keras_prefix}/{variable.name}"
        suffix, kind = (None, None) if module is None else _torch_suffix(layer, variable.name, arch)
        if suffix is None:
            unknown.append(keras_name)
        else:
            pairs.append((WeightSource(keras_name, f"{module}.{suffix}", kind), variable))
    return pairs, unknown


def weight_sources(model, arch):
    """The checkpoint tensor of every weight of a DANet.

    Args:
        model: a `danet_keras.DANet` with `block_layout="torch"`.
        arch: `"official"` or `"mmseg"`.

    Returns:
        `(pairs, unmapped)`: a list of `(WeightSource, Keras variable)`, and
        the names of Keras weights that have no counterpart in this layout
        (e.g. the auxiliary head in the official layout).
    """
    if arch not in ARCHS:
        raise ValueError(f"`arch` must be one of {ARCHS}, got {arch!r}.")
    layout = model.backbone.block_layout
    if layout != "torch":
        raise ValueError(
            "PyTorch checkpoints need a model built with block_layout='torch' (the official / "
            f"mmsegmentation layout); this model has block_layout={layout!r}."
        )
    pairs, unmapped = [], []
    for in_backbone, layers in ((True, model.backbone.layers), (False, model.head_layers)):
        for layer in layers:
            sources, unknown = _layer_sources(layer, arch, in_backbone)
            pairs.extend(sources)
            unmapped.extend(unknown)
    return pairs, unmapped
