"""Dilated ResNet backbones (output stride 8, 16 or 32) as functional Keras models.

Two block layouts:

- `"torch"`: the torchvision / official DANet / mmsegmentation layout. The
  stride of a bottleneck sits on its 3x3 convolution, convolutions have no
  bias, BatchNorm epsilon is 1e-5, strided convolutions and the stem's max
  pool pad symmetrically as PyTorch does. Layer names follow the PyTorch
  module tree (`stage{s}_block{b}_conv{i}`, `..._bn{i}`,
  `..._downsample_conv`/`_bn`, `stem_conv`, ...), with stages 1-4 =
  `layer1`-`layer4` and blocks counted from 0, so converted checkpoints map
  by name.
- `"keras"`: the `keras.applications.ResNet50/101/152` layout (stride on the
  first 1x1 convolution, biases on every convolution, BatchNorm epsilon
  1.001e-5) with keras.applications' layer names, so its ImageNet weights load
  by name. Bottleneck depths and the standard stem only.

Dilation replaces stride in the last stages. As in the official code (and
mmsegmentation's `contract_dilation`), the first block of a dilated stage uses
half the stage's dilation; multi-grid dilations for the last stage are used as
given, cycled over its blocks (official DANet: (4, 8, 16)).
"""

import os
import types

import keras

from danet_keras.layers.conv_blocks import ConvBlockFactory
from danet_keras.layers.remat import rematerialized
from danet_keras.models import preset_io
from danet_keras.models.presets import backbone_preset
from danet_keras.utils.architecture import RESNET_DEPTHS

OUTPUT_STRIDES = (8, 16, 32)
STEMS = ("standard", "deep")
BLOCK_LAYOUTS = ("torch", "keras")
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}
BATCHNORM_EPSILON = {"torch": 1e-5, "keras": 1.001e-5}
# Deep stem widths (w, w, 2w): mmsegmentation's ResNetV1c uses w = 32, the
# official DANet code w = 64.
DEFAULT_DEEP_STEM_WIDTH = 32


def stage_plan(output_stride, blocks_per_stage, multi_grid=None):
    """Strides and per-block dilations of the four stages.

    Args:
        output_stride: 8, 16 or 32.
        blocks_per_stage: four block counts.
        multi_grid: None or dilations for the last stage's blocks, cycled.

    Returns:
        A list of four `(stride, [dilation of each block])` tuples.
    """
    if output_stride == 8:
        strides, dilations = (1, 2, 1, 1), (1, 1, 2, 4)
    elif output_stride == 16:
        strides, dilations = (1, 2, 2, 1), (1, 1, 1, 2)
    else:
        strides, dilations = (1, 2, 2, 2), (1, 1, 1, 1)
    plan = []
    for stage, (stride, dilation, blocks) in enumerate(zip(strides, dilations, blocks_per_stage)):
        if stage == 3 and multi_grid:
            block_dilations = [int(multi_grid[i % len(multi_grid)]) for i in range(blocks)]
        else:
            first = max(1, dilation // 2)
            block_dilations = [first] + [dilation] * (blocks - 1)
        plan.append((stride, block_dilations))
    return plan


def _validate(depth, output_stride, multi_grid, stem, block_layout, input_shape):
    """Raises a ValueError naming the argument and the allowed values."""
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"`depth` must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}.")
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"`output_stride` must be one of {OUTPUT_STRIDES}, got {output_stride!r}.")
    if stem not in STEMS:
        raise ValueError(f"`stem` must be one of {STEMS}, got {stem!r}.")
    if block_layout not in BLOCK_LAYOUTS:
        raise ValueError(f"`block_layout` must be one of {BLOCK_LAYOUTS}, got {block_layout!r}.")
    block_type, blocks = RESNET_DEPTHS[depth]
    if block_layout == "keras" and (block_type != "bottleneck" or stem != "standard"):
        raise ValueError(
            "`block_layout='keras'` (keras.applications) exists only for depths 50, 101, 152 "
            f"with stem='standard'; got depth={depth}, stem={stem!r}."
        )
    if multi_grid is not None:
        last_blocks = blocks[3]
        if (
            isinstance(multi_grid, (str, bytes))
            or not hasattr(multi_grid, "__len__")
            or not 1 <= len(multi_grid) <= last_blocks
            or not all(isinstance(d, int) and d >= 1 for d in multi_grid)
        ):
            raise ValueError(
                f"`multi_grid` must be None or 1 to {last_blocks} positive integer dilations "
                f"for the {last_blocks} blocks of the last stage of ResNet-{depth} "
                f"(official DANet: (4, 8, 16)); got {multi_grid!r}."
            )
        if output_stride == 32:
            raise ValueError("`multi_grid` needs a dilated last stage: `output_stride` 8 or 16.")
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, 3) for RGB images (height and width may "
            f"be None), got {input_shape!r}."
        )


def _torch_block(b, x, block_type, filters, stride, dilation, name, downsample):
    out_channels = filters * EXPANSION[block_type]
    shortcut = x
    if downsample:
        shortcut = b.conv(x, out_channels, 1, f"{name}_downsample_conv", stride=stride)
        shortcut = b.batch_norm(shortcut, f"{name}_downsample_bn")
    if block_type == "bottleneck":
        y = b.relu(
            b.batch_norm(b.conv(x, filters, 1, f"{name}_conv1"), f"{name}_bn1"), f"{name}_relu1"
        )
        y = b.conv(y, filters, 3, f"{name}_conv2", stride=stride, dilation=dilation)
        y = b.relu(b.batch_norm(y, f"{name}_bn2"), f"{name}_relu2")
        y = b.batch_norm(b.conv(y, out_channels, 1, f"{name}_conv3"), f"{name}_bn3")
    else:
        # mmsegmentation's BasicBlock: dilation on the first 3x3 only.
        y = b.conv(x, filters, 3, f"{name}_conv1", stride=stride, dilation=dilation)
        y = b.relu(b.batch_norm(y, f"{name}_bn1"), f"{name}_relu1")
        y = b.batch_norm(b.conv(y, filters, 3, f"{name}_conv2"), f"{name}_bn2")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return b.relu(y, f"{name}_out")


def _keras_block(b, x, filters, stride, dilation, name, downsample):
    # keras.applications.resnet.residual_block_v1, with dilation on the 3x3.
    shortcut = x
    if downsample:
        shortcut = b.batch_norm(
            b.conv(x, 4 * filters, 1, f"{name}_0_conv", stride=stride), f"{name}_0_bn"
        )
    y = b.conv(x, filters, 1, f"{name}_1_conv", stride=stride)
    y = b.relu(b.batch_norm(y, f"{name}_1_bn"), f"{name}_1_relu")
    y = b.conv(y, filters, 3, f"{name}_2_conv", dilation=dilation)
    y = b.relu(b.batch_norm(y, f"{name}_2_bn"), f"{name}_2_relu")
    y = b.batch_norm(b.conv(y, 4 * filters, 1, f"{name}_3_conv"), f"{name}_3_bn")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return b.relu(y, f"{name}_out")


def _stem(b, x, stem, stem_width, block_layout):
    if block_layout == "keras":
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
        x = keras.layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
        x = b.relu(b.batch_norm(x, "conv1_bn"), "conv1_relu")
        return b.max_pool(x, "pool1_pool"), 64
    if stem == "standard":
        x = b.relu(b.batch_norm(b.conv(x, 64, 7, "stem_conv", stride=2), "stem_bn"), "stem_relu")
        return b.max_pool(x, "stem_pool"), 64
    widths = (stem_width, stem_width, 2 * stem_width)
    for i, width in enumerate(widths, start=1):
        x = b.conv(x, width, 3, f"stem_conv{i}", stride=2 if i == 1 else 1)
        x = b.relu(b.batch_norm(x, f"stem_bn{i}"), f"stem_relu{i}")
    return b.max_pool(x, "stem_pool"), widths[-1]


@keras.saving.register_keras_serializable(package="danet_keras")
class DilatedResNet(keras.Model):
    """A dilated ResNet backbone that returns the features of its four stages.

    Input: normalised images (B, H, W, 3) (see `ImageNormalization`; the
    `"torch"` layout expects ImageNet mean/std, the `"keras"` layout the caffe
    convention). Output: a dict `{"stage1": ..., "stage4": ...}` of NHWC
    features at strides 4, 8, and then 8/16/32 depending on `output_stride`.

    Build one from its arguments, from a preset (`DilatedResNet.from_preset`:
    `"resnet50"`, `"resnet101_v1c"`, `"resnet101_imagenet"`, ... or a preset
    directory), or with keras.applications' ImageNet weights
    (`DilatedResNet.from_keras_applications`).

    Args:
        depth: 18, 34 (basic blocks), 50, 101 or 152 (bottlenecks).
        output_stride: 8, 16 or 32. 8: stages 3 and 4 dilated by 2 and 4;
            16: stage 4 dilated by 2; 32: the plain ResNet.
        multi_grid: None, or dilations of the last stage's blocks, cycled over
            them (the paper's best model: (4, 8, 16) at output stride 8).
        stem: `"standard"` (7x7 conv, stride 2) or `"deep"` (three 3x3 convs
            of widths (w, w, 2w), ResNetV1c).
        stem_width: w of the deep stem; default 32 (mmsegmentation); the
            official DANet code uses 64.
        block_layout: `"torch"` or `"keras"`; see the module docstring.
        sync_batchnorm: use `BatchNormalization(synchronized=True)`, which
            averages batch statistics over replicas under `tf.distribute`.
        remat: bool. Rematerialise each residual block in training: the
            backward pass recomputes a block's activations from its input
            instead of keeping them from the forward pass, so only the
            blocks' inputs stay in memory (about a third of the backbone's
            training memory at ResNet-50 width) for one more forward pass of
            the backbone. Outputs and gradients are the same; an attribute
            that may be changed at any time (`backbone.remat = True`).
        input_shape: shape of one image, (height, width, 3); height and width
            may be None.
        **kwargs: `keras.Model` arguments (`name`, ...).
    """

    def __init__(
        self,
        depth=50,
        output_stride=8,
        multi_grid=None,
        stem="standard",
        stem_width=None,
        block_layout="torch",
        sync_batchnorm=False,
        remat=False,
        input_shape=(None, None, 3),
        **kwargs,
    ):
        multi_grid = None if multi_grid is None else tuple(multi_grid)
        _validate(depth, output_stride, multi_grid, stem, block_layout, input_shape)
        stem_width = DEFAULT_DEEP_STEM_WIDTH if stem_width is None else int(stem_width)
        block_type, blocks_per_stage = RESNET_DEPTHS[depth]
        builder = ConvBlockFactory(
            use_bias=block_layout == "keras",
            batchnorm_epsilon=BATCHNORM_EPSILON[block_layout],
            sync_batchnorm=sync_batchnorm,
        )

        inputs = keras.Input(shape=tuple(input_shape), name="normalized_images")
        x, channels = _stem(builder, inputs, stem, stem_width, block_layout)
        # Where each residual block starts and ends: the graph's segments for `remat`.
        boundaries = [(None, x)]
        features = {}
        plan = stage_plan(output_stride, blocks_per_stage, multi_grid)
        for stage, (stride, block_dilations) in enumerate(plan, start=1):
            filters = STAGE_WIDTHS[stage - 1]
            out_channels = filters * EXPANSION[block_type]
            for index, dilation in enumerate(block_dilations):
                block_stride = stride if index == 0 else 1
                downsample = index == 0 and (block_stride != 1 or channels != out_channels)
                if block_layout == "keras":
                    # keras.applications: conv{2..5}_block{1..}; always a
                    # projection shortcut in the first block.
                    name = f"conv{stage + 1}_block{index + 1}"
                    x = _keras_block(builder, x, filters, block_stride, dilation, name, index == 0)
                else:
                    name = f"stage{stage}_block{index}"
                    x = _torch_block(
                        builder, x, block_type, filters, block_stride, dilation, name, downsample
                    )
                channels = out_channels
                boundaries.append((f"stage{stage}", x))
            features[f"stage{stage}"] = x
        kwargs.setdefault("name", "backbone")
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        self.depth = depth
        self.output_stride = output_stride
        self.multi_grid = multi_grid
        self.stem = stem
        self.stem_width = stem_width
        self.block_layout = block_layout
        self.sync_batchnorm = bool(sync_batchnorm)
        self.remat = bool(remat)
        self.image_shape = tuple(input_shape)
        self.stage_channels = tuple(w * EXPANSION[block_type] for w in STAGE_WIDTHS)
        # A namespace, not an attribute Keras tracks: the segments share this
        # model's layers and must not be saved a second time.
        self._remat_graph = types.SimpleNamespace(boundaries=boundaries, segments=None)

    def _segments(self):
        """The stem and each residual block as models sharing this model's layers."""
        if self._remat_graph.segments is None:
            (_, stem_output), *blocks = self._remat_graph.boundaries
            segments, start = [], stem_output
            for stage, end in blocks:
                segments.append((stage, keras.Model(start, end, name=f"{end.name}_segment")))
                start = end
            stem = keras.Model(self.inputs[0], stem_output, name="stem_segment")
            self._remat_graph.segments = (stem, segments)
        return self._remat_graph.segments

    def call(self, inputs, training=None, mask=None):
        if not (self.remat and training):
            # Inference keeps no activations for a backward pass: nothing to recompute.
            return super().call(inputs, training=training, mask=mask)
        stem, segments = self._segments()
        x = stem(inputs, training=training)
        features = {}
        for stage, block in segments:
            x = rematerialized(block, training)(x)
            features[stage] = x
        return features

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "depth": self.depth,
            "output_stride": self.output_stride,
            "multi_grid": self.multi_grid,
            "stem": self.stem,
            "stem_width": self.stem_width,
            "block_layout": self.block_layout,
            "sync_batchnorm": self.sync_batchnorm,
            "remat": self.remat,
            "input_shape": self.image_shape,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """A backbone from a named preset or a preset directory.

        Args:
            preset: a name of `danet_keras.backbones.BACKBONE_PRESETS`
                (`"resnet50"`, `"resnet101_v1c"`, `"resnet50_imagenet"`, ...)
                or a preset directory (`config.json`, `model.weights.h5`).
            load_weights: load the preset's weights where it has some
                (`*_imagenet`: keras.applications' ImageNet weights, which the
                first call downloads, checks against their published MD5 and
                installs in the local preset cache; a directory: its
                `model.weights.h5`). Architecture-only presets build fresh
                weights either way.
            **overrides: constructor arguments that replace the preset's
                (e.g. `output_stride=16`, `sync_batchnorm=True`).

        Returns:
            A `DilatedResNet`.

        Raises:
            danet_keras.utils.download.DownloadFailed: (an OSError) the
                download failed or its hash differs; one line naming the URL
                and the cache folder.
        """
        if preset_io.is_preset_dir(preset):
            return preset_io.load_preset_model(preset, cls, load_weights, overrides)
        entry = backbone_preset(preset)
        weights = entry.get("weights")
        if not (load_weights and weights):
            return cls(**dict(entry["config"], **overrides))
        directory = preset_io.local_preset_dir(preset)
        if directory is None:
            depth = entry["config"]["depth"]
            directory = preset_io.install_preset(
                preset,
                weights["url"],
                weights["hash"],
                lambda path: cls.from_keras_applications(depth, path),
                metadata={"source": "keras.applications ImageNet weights"},
                manual_step=(
                    "When online, call again; or download the file yourself and pass its path "
                    f"(`DilatedResNet.from_keras_applications({depth}, FILE)`, or "
                    "`backbone_weights=FILE`)."
                ),
            )
        return preset_io.load_preset_model(directory, cls, True, overrides)

    @classmethod
    def from_keras_applications(cls, depth, weights="imagenet", **kwargs):
        """A `block_layout="keras"` backbone holding keras.applications ResNet weights.

        The two share layer names; dilation and output stride change no weight
        shape, so ImageNet weights serve any output stride.

        Args:
            depth: 50, 101 or 152.
            weights: `"imagenet"` (downloaded by Keras, cached in ~/.keras;
                `from_preset("resnet50_imagenet")` keeps the converted
                backbone in the preset cache instead) or the path of a
                weights file saved from
                `keras.applications.ResNet50/101/152` (with or without the
                classification top).
            **kwargs: other constructor arguments (`output_stride`,
                `multi_grid`, `sync_batchnorm`, `input_shape`, `name`).

        Returns:
            A `DilatedResNet`.
        """
        backbone = cls(depth=depth, block_layout="keras", **kwargs)
        load_keras_applications_weights(backbone, weights)
        return backbone

    def save_to_preset(self, directory, metadata=None, overwrite=False):
        """Writes this backbone as a preset directory (`models.preset_io.save_preset`)."""
        return preset_io.save_preset(self, directory, metadata, overwrite=overwrite)


def keras_applications_resnet(depth, weights):
    """The `keras.applications` ResNet of `depth` (50, 101, 152), headless.

    Args:
        depth: 50, 101 or 152.
        weights: "imagenet" (downloaded by Keras, cached in ~/.keras) or the
            path of a weights file saved from such a model (with or without
            its classification top; `.h5` or `.weights.h5`).

    Returns:
        A `keras.Model` holding those weights.
    """
    constructors = {
        50: keras.applications.ResNet50,
        101: keras.applications.ResNet101,
        152: keras.applications.ResNet152,
    }
    if depth not in constructors:
        raise ValueError(
            f"keras.applications has ImageNet ResNets of depth 50, 101 and 152 only, not {depth}."
        )
    build = constructors[depth]
    if weights == "imagenet":
        return build(include_top=False, weights="imagenet", input_shape=(None, None, 3))
    if not os.path.exists(str(weights)):
        raise ValueError(
            f"`backbone_weights` must be None, 'imagenet' or an existing file; no file {weights!r}."
        )
    model = build(include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        model.load_weights(weights)
    except ValueError:
        # A file saved with the classification top: load it whole, keep the body.
        full = build(include_top=True, weights=None)
        full.load_weights(weights)
        for layer in model.layers:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    return model


def load_keras_applications_weights(backbone, weights):
    """Copies keras.applications ResNet weights into a `block_layout="keras"` backbone.

    The two share layer names; dilation and output stride change no weight
    shape, so ImageNet weights serve any output stride.

    Args:
        backbone: a `DilatedResNet` with `block_layout="keras"`.
        weights: "imagenet" or a local weights file (see
            `keras_applications_resnet`).

    Returns:
        The number of layers whose weights were set.
    """
    if backbone.block_layout != "keras":
        raise ValueError(
            "keras.applications weights need `block_layout='keras'` (their stride sits on the "
            f"first 1x1 convolution); this backbone has block_layout={backbone.block_layout!r}."
        )
    reference = keras_applications_resnet(backbone.depth, weights)
    copied = 0
    for layer in reference.layers:
        values = layer.get_weights()
        if values:
            backbone.get_layer(layer.name).set_weights(values)
            copied += 1
    return copied
