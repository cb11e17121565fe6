"""DANet: a dilated ResNet with the dual-attention head (Fu et al., CVPR 2019)."""

import keras

from danet_keras.backbones.resnet import (
    BLOCK_LAYOUTS,
    RESNET_DEPTHS,
    DilatedResNet,
    LayerBuilder,
    load_keras_applications_weights,
    validate_backbone_args,
)
from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike
from danet_keras.models.presets import preset_config

BACKBONES = tuple(f"resnet{depth}" for depth in RESNET_DEPTHS)
ATTENTIONS = ("position", "channel")


def _validate(num_classes, backbone, attention, input_shape, backbone_weights, block_layout):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be an integer >= 1, got {num_classes!r}.")
    if backbone not in BACKBONES:
        raise ValueError(f"`backbone` must be one of {BACKBONES}, got {backbone!r}.")
    if isinstance(attention, str):
        attention = (attention,)
    attention = tuple(attention)
    if any(a not in ATTENTIONS for a in attention) or len(set(attention)) != len(attention):
        raise ValueError(
            "`attention` must be a tuple of distinct names from "
            f"{ATTENTIONS} (empty for the dilated FCN baseline), got {attention!r}."
        )
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, 3) for RGB images (height and width may be "
            f"None), got {input_shape!r}."
        )
    if block_layout is not None and block_layout not in BLOCK_LAYOUTS:
        raise ValueError(f"`block_layout` must be one of {BLOCK_LAYOUTS}, got {block_layout!r}.")
    if backbone_weights is not None and not isinstance(backbone_weights, str):
        raise ValueError(
            f"`backbone_weights` must be None, 'imagenet' or a file path, got {backbone_weights!r}."
        )
    return attention, input_shape


@keras.saving.register_keras_serializable(package="danet_keras")
class DANet(keras.Model):
    """Dual Attention Network for semantic segmentation.

    A dilated ResNet feeds two parallel branches on its last stage: position
    attention (PAM) and channel attention (CAM). Each branch is, as in the
    official code, a 3x3 conv-BN-ReLU to C/4 channels, the attention module,
    and a 3x3 conv-BN-ReLU. The fused prediction classifies (dropout 0.1, 1x1
    conv) the sum of the two branches; each branch is also classified on its
    own (the official three-loss training). All logits are bilinearly resized
    to the input's size.

    The model takes RGB pixel values in [0, 255] (any dtype, any height and
    width) and normalises them itself, so saved and exported models take raw
    images.

    Args:
        num_classes: number of classes, >= 1.
        backbone: `"resnet18"`, `"resnet34"`, `"resnet50"`, `"resnet101"` or
            `"resnet152"`.
        output_stride: 8 (the paper), 16 or 32.
        multi_grid: None, or the last stage's dilations, e.g. (4, 8, 16).
        stem: `"standard"` (7x7 conv; the official Cityscapes model) or
            `"deep"` (three 3x3 convs, ResNetV1c as mmsegmentation).
        attention: the attention branches, a tuple from
            `("position", "channel")`; `()` is the dilated FCN baseline.
        aux_head: add mmsegmentation's FCN auxiliary head on stage 3
            (one 3x3 conv-BN-ReLU to `aux_channels`, dropout, 1x1 conv).
        align_corners: upsampling convention: True as the official code,
            False as mmsegmentation (and `tf.image.resize`).
        backbone_weights: None, `"imagenet"` (keras.applications ResNet
            weights, downloaded when online) or the path of a file saved from
            `keras.applications.ResNet50/101/152`. Needs
            `block_layout="keras"`, which it selects by default.
        block_layout: `"torch"` (official / mmsegmentation layout, default)
            or `"keras"` (keras.applications layout); None picks `"keras"`
            when `backbone_weights` is given, else `"torch"`.
        stem_width: width w of the deep stem (w, w, 2w); default 32
            (mmsegmentation), 64 for the official deep stem.
        head_channels: channels of the attention branches; default C/4 of
            the backbone's last stage (512 for ResNet-50).
        attention_reduction: channel reduction of the position attention's
            query/key projections (8).
        attention_block_size: query block size of the position attention;
            None chooses it from the energy's memory budget.
        dropout: dropout rate (channel-wise, as `Dropout2d`) before each
            classifier.
        aux_channels: channels of the auxiliary head.
        sync_batchnorm: synchronise BatchNorm statistics over replicas.
        input_shape: (height, width, 3); height and width may be None.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Returns (when called):
        A dict with `"logits"` (B, H, W, num_classes), the fused prediction;
        with both attentions also `"position_logits"` and `"channel_logits"`;
        with `aux_head=True` also `"aux_logits"`. Logits are float32 under
        mixed precision.

    Example:

    ```python
    model = danet_keras.DANet(num_classes=19, backbone="resnet50")
    outputs = model(images)  # images: (B, H, W, 3) in [0, 255]
    class_ids = keras.ops.argmax(outputs["logits"], axis=-1)
    ```
    """

    def __init__(
        self,
        num_classes,
        backbone="resnet50",
        output_stride=8,
        multi_grid=None,
        stem="standard",
        attention=ATTENTIONS,
        aux_head=False,
        align_corners=False,
        backbone_weights=None,
        block_layout=None,
        stem_width=None,
        head_channels=None,
        attention_reduction=8,
        attention_block_size=None,
        dropout=0.1,
        aux_channels=256,
        sync_batchnorm=False,
        input_shape=(None, None, 3),
        **kwargs,
    ):
        attention, input_shape = _validate(
            num_classes, backbone, attention, input_shape, backbone_weights, block_layout
        )
        if block_layout is None:
            block_layout = "torch" if backbone_weights is None else "keras"
        depth = int(backbone[len("resnet") :])
        multi_grid = None if multi_grid is None else tuple(multi_grid)
        validate_backbone_args(depth, output_stride, multi_grid, stem, block_layout)

        # === Layers ===
        encoder = DilatedResNet(
            depth=depth,
            output_stride=output_stride,
            multi_grid=multi_grid,
            stem=stem,
            stem_width=stem_width,
            block_layout=block_layout,
            sync_batchnorm=sync_batchnorm,
            input_shape=input_shape,
            name="backbone",
        )
        if backbone_weights is not None:
            load_keras_applications_weights(encoder, backbone_weights)
        in_channels = encoder.stage_channels[3]
        head_channels = in_channels // 4 if head_channels is None else int(head_channels)
        build = LayerBuilder("torch", sync_batchnorm)

        def conv_bn_relu(x, filters, name):
            return build.relu(
                build.bn(build.conv(x, filters, 3, f"{name}_conv"), f"{name}_bn"), f"{name}_relu"
            )

        def classify(x, name):
            x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
            return keras.layers.Conv2D(num_classes, 1, name=f"{name}_classifier")(x)

        def upsample(x, name):
            # float32 so that logits are float32 under mixed precision.
            return ResizeLike(align_corners, dtype="float32", name=name)(x, images)

        # === Functional model ===
        images = keras.Input(shape=input_shape, name="images")
        mode = "caffe" if block_layout == "keras" else "torch"
        normalized = ImageNormalization(mode, name="normalization")(images)
        features = encoder(normalized)
        top = features["stage4"]

        branches = {}
        for name in attention:
            x = conv_bn_relu(top, head_channels, f"{name}_reduce")
            if name == "position":
                x = PositionAttention(
                    reduction=attention_reduction,
                    block_size=attention_block_size,
                    name="position_attention",
                )(x)
            else:
                x = ChannelAttention(name="channel_attention")(x)
            branches[name] = conv_bn_relu(x, head_channels, f"{name}_project")
        if not branches:
            # Dilated FCN baseline (the official FCNHead without attention).
            branches["fcn"] = conv_bn_relu(top, head_channels, "fcn_reduce")
        fused = list(branches.values())
        fused = fused[0] if len(fused) == 1 else keras.layers.Add(name="fused_add")(fused)

        outputs = {"logits": upsample(classify(fused, "fused"), "logits")}
        if len(attention) == 2:
            for name in attention:
                outputs[f"{name}_logits"] = upsample(
                    classify(branches[name], name), f"{name}_logits"
                )
        if aux_head:
            x = conv_bn_relu(features["stage3"], aux_channels, "aux")
            outputs["aux_logits"] = upsample(classify(x, "aux"), "aux_logits")

        kwargs.setdefault("name", "danet")
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.multi_grid = multi_grid
        self.stem = stem
        self.attention = attention
        self.aux_head = bool(aux_head)
        self.align_corners = bool(align_corners)
        self.block_layout = block_layout
        self.stem_width = stem_width
        self.head_channels = head_channels
        self.attention_reduction = attention_reduction
        self.attention_block_size = attention_block_size
        self.dropout = dropout
        self.aux_channels = aux_channels
        self.sync_batchnorm = bool(sync_batchnorm)
        self.image_shape = input_shape
        self.backbone = encoder

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "backbone": self.backbone_name,
            "output_stride": self.output_stride,
            "multi_grid": self.multi_grid,
            "stem": self.stem,
            "attention": self.attention,
            "aux_head": self.aux_head,
            "align_corners": self.align_corners,
            # The weights travel with the saved model; never re-download them.
            "backbone_weights": None,
            "block_layout": self.block_layout,
            "stem_width": self.stem_width,
            "head_channels": self.head_channels,
            "attention_reduction": self.attention_reduction,
            "attention_block_size": self.attention_block_size,
            "dropout": self.dropout,
            "aux_channels": self.aux_channels,
            "sync_batchnorm": self.sync_batchnorm,
            "input_shape": self.image_shape,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Builds a named configuration (see `danet_keras.models.presets.PRESETS`).

        Args:
            preset: preset name, e.g. `"danet_resnet101_cityscapes"`.
            **overrides: DANet arguments that replace the preset's.

        Returns:
            A `DANet` with freshly initialised weights.
        """
        return cls(**preset_config(preset, **overrides))

    @property
    def head_layers(self):
        """The layers outside the backbone (the head), e.g. for a 10x learning rate."""
        return [layer for layer in self.layers if layer is not self.backbone]
