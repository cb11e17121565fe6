"""DANet: a dilated ResNet with the dual-attention head (Fu et al., CVPR 2019)."""

import keras

from danet_keras.data.classes import check_class_names, check_palette
from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.conv_blocks import ConvBlockFactory
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike
from danet_keras.models import preset_io, presets
from danet_keras.models.dilated_resnet import DilatedResNet
from danet_keras.models.presets import BACKBONE_PRESETS

ATTENTIONS = ("position", "channel")


def _attention_names(attention):
    if isinstance(attention, str):
        attention = (attention,)
    attention = tuple(attention)
    if any(a not in ATTENTIONS for a in attention) or len(set(attention)) != len(attention):
        raise ValueError(
            "`attention` must be a tuple of distinct names from "
            f"{ATTENTIONS} (empty for the dilated FCN baseline), got {attention!r}."
        )
    return attention


def _backbone_from_name(name, backbone_weights, sync_batchnorm, options):
    """The `DilatedResNet` that a backbone name and the shortcut options describe."""
    if not isinstance(name, str) or name not in BACKBONE_PRESETS:
        raise ValueError(
            f"`backbone` must be a DilatedResNet or one of {sorted(BACKBONE_PRESETS)}, "
            f"got {name!r}."
        )
    options = {k: v for k, v in options.items() if v is not None}
    options["sync_batchnorm"] = bool(sync_batchnorm)
    if backbone_weights is None:
        return DilatedResNet.from_preset(name, load_weights=False, **options)
    if not isinstance(backbone_weights, str):
        raise ValueError(
            f"`backbone_weights` must be None, 'imagenet' or a file path, got {backbone_weights!r}."
        )
    config = dict(BACKBONE_PRESETS[name]["config"], **options)
    config.pop("block_layout", None)
    return DilatedResNet.from_keras_applications(config.pop("depth"), backbone_weights, **config)


@keras.saving.register_keras_serializable(package="danet_keras")
class DANet(keras.Model):
    """Dual Attention Network for semantic segmentation.

    A dilated ResNet backbone feeds two parallel branches on its last stage:
    position attention (PAM) and channel attention (CAM). Each branch is, as
    in the official code, a 3x3 conv-BN-ReLU to C/4 channels, the attention
    module, and a 3x3 conv-BN-ReLU. The fused prediction classifies (dropout
    0.1, 1x1 conv) the sum of the two branches; each branch is also classified
    on its own (the official three-loss training). All logits are bilinearly
    resized to the input's size.

    The model takes RGB pixel values in [0, 255] (any dtype, any height and
    width) and normalises them itself, so saved and exported models take raw
    images.

    The backbone is a `DilatedResNet` object (keras-hub's backbone/task
    split), or a backbone preset name as a shortcut: `DANet(19, "resnet50",
    output_stride=8)` is `DANet(19, DilatedResNet.from_preset("resnet50",
    load_weights=False, output_stride=8))`. The backbone options below apply
    to a name only; a `DilatedResNet` carries its own.

    Args:
        num_classes: number of classes, >= 1.
        backbone: a `DilatedResNet`, or a name of
            `danet_keras.backbones.BACKBONE_PRESETS` (`"resnet18"` ...
            `"resnet152"`, `"resnet101_v1c"`, `"resnet50_imagenet"`, ...).
        attention: the attention branches, a tuple from
            `("position", "channel")`; `()` is the dilated FCN baseline.
        aux_head: add mmsegmentation's FCN auxiliary head on stage 3
            (one 3x3 conv-BN-ReLU to `aux_channels`, dropout, 1x1 conv).
        align_corners: upsampling convention: True as the official code,
            False as mmsegmentation (and `tf.image.resize`).
        head_channels: channels of the attention branches; default C/4 of
            the backbone's last stage (512 for ResNet-50).
        attention_reduction: channel reduction of the position attention's
            query/key projections (8).
        attention_block_size: query block size of the position attention;
            None chooses it from the energy's memory budget.
        dropout: dropout rate (channel-wise, as `Dropout2d`) before each
            classifier.
        aux_channels: channels of the auxiliary head.
        sync_batchnorm: synchronise BatchNorm statistics over replicas; None
            follows the backbone (False for a name).
        output_stride, multi_grid, stem, stem_width, block_layout,
            input_shape: `DilatedResNet` arguments, with a backbone name only
            (None: the preset's).
        backbone_weights: with a backbone name only: None, `"imagenet"` or
            the path of a keras.applications ResNet weights file; loads them
            through `DilatedResNet.from_keras_applications` (the
            `block_layout="keras"` backbone).
        class_names: None, or the `num_classes` names of the classes, which
            travel with the model into every artefact (`.keras`, preset
            directories, SavedModel, TFLite, ONNX) and label its pictures and
            tables; `danet_keras.train` sets them from the dataset.
        palette: None, or the `num_classes` (r, g, b) colours of the classes,
            likewise. Without them consumers use `class_0 ...` and the PASCAL
            VOC colours (`danet_keras.data.classes.model_classes`).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Returns (when called):
        A dict with `"logits"` (B, H, W, num_classes), the fused prediction;
        with both attentions also `"position_logits"` and `"channel_logits"`;
        with `aux_head=True` also `"aux_logits"`. Logits are float32 under
        mixed precision.

    Example:

    ```python
    model = danet_keras.DANet(num_classes=19, backbone="resnet50")
    backbone = danet_keras.DilatedResNet.from_preset("resnet101_v1c", output_stride=16)
    model = danet_keras.DANet(num_classes=19, backbone=backbone, aux_head=True)
    outputs = model(images)  # images: (B, H, W, 3) in [0, 255]
    class_ids = keras.ops.argmax(outputs["logits"], axis=-1)
    ```
    """

    def __init__(
        self,
        num_classes,
        backbone="resnet50",
        attention=ATTENTIONS,
        aux_head=False,
        align_corners=False,
        head_channels=None,
        attention_reduction=8,
        attention_block_size=None,
        dropout=0.1,
        aux_channels=256,
        sync_batchnorm=None,
        output_stride=None,
        multi_grid=None,
        stem=None,
        stem_width=None,
        block_layout=None,
        input_shape=None,
        backbone_weights=None,
        class_names=None,
        palette=None,
        **kwargs,
    ):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be an integer >= 1, got {num_classes!r}.")
        class_names = check_class_names(class_names, num_classes)
        palette = check_palette(palette, num_classes)
        attention = _attention_names(attention)
        options = dict(
            output_stride=output_stride,
            multi_grid=multi_grid,
            stem=stem,
            stem_width=stem_width,
            block_layout=block_layout,
            input_shape=input_shape,
        )
        if isinstance(backbone, DilatedResNet):
            given = sorted(k for k, v in options.items() if v is not None)
            if backbone_weights is not None:
                given.append("backbone_weights")
            if given:
                raise ValueError(
                    f"{given} describe the backbone: pass them to DilatedResNet (or give "
                    "`backbone` as a name)."
                )
        else:
            backbone = _backbone_from_name(backbone, backbone_weights, sync_batchnorm, options)
        if sync_batchnorm is None:
            sync_batchnorm = backbone.sync_batchnorm
        in_channels = backbone.stage_channels[3]
        head_channels = in_channels // 4 if head_channels is None else int(head_channels)
        blocks = ConvBlockFactory(sync_batchnorm=sync_batchnorm)

        def classify(x, name):
            x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
            return keras.layers.Conv2D(num_classes, 1, name=f"{name}_classifier")(x)

        def upsample(x, name):
            # float32 so that logits are float32 under mixed precision.
            return ResizeLike(align_corners, dtype="float32", name=name)(x, images)

        # === Functional model ===
        images = keras.Input(shape=backbone.image_shape, name="images")
        mode = "caffe" if backbone.block_layout == "keras" else "torch"
        normalized = ImageNormalization(mode, name="normalization")(images)
        features = backbone(normalized)
        top = features["stage4"]

        branches = {}
        for name in attention:
            x = blocks.conv_bn_relu(top, head_channels, 3, f"{name}_reduce")
            if name == "position":
                x = PositionAttention(
                    reduction=attention_reduction,
                    block_size=attention_block_size,
                    name="position_attention",
                )(x)
            else:
                x = ChannelAttention(name="channel_attention")(x)
            branches[name] = blocks.conv_bn_relu(x, head_channels, 3, f"{name}_project")
        if not branches:
            # Dilated FCN baseline (the official FCNHead without attention).
            branches["fcn"] = blocks.conv_bn_relu(top, head_channels, 3, "fcn_reduce")
        fused = list(branches.values())
        fused = fused[0] if len(fused) == 1 else keras.layers.Add(name="fused_add")(fused)

        outputs = {"logits": upsample(classify(fused, "fused"), "logits")}
        if len(attention) == 2:
            for name in attention:
                outputs[f"{name}_logits"] = upsample(
                    classify(branches[name], name), f"{name}_logits"
                )
        if aux_head:
            x = blocks.conv_bn_relu(features["stage3"], aux_channels, 3, "aux")
            outputs["aux_logits"] = upsample(classify(x, "aux"), "aux_logits")

        kwargs.setdefault("name", "danet")
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.num_classes = num_classes
        self.attention = attention
        self.aux_head = bool(aux_head)
        self.align_corners = bool(align_corners)
        self.head_channels = head_channels
        self.attention_reduction = attention_reduction
        self.attention_block_size = attention_block_size
        self.dropout = dropout
        self.aux_channels = aux_channels
        self.sync_batchnorm = bool(sync_batchnorm)
        self.class_names = class_names
        self.palette = palette

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            # The backbone travels as an object; its weights travel with the model.
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "attention": self.attention,
            "aux_head": self.aux_head,
            "align_corners": self.align_corners,
            "head_channels": self.head_channels,
            "attention_reduction": self.attention_reduction,
            "attention_block_size": self.attention_block_size,
            "dropout": self.dropout,
            "aux_channels": self.aux_channels,
            "sync_batchnorm": self.sync_batchnorm,
            "class_names": None if self.class_names is None else list(self.class_names),
            "palette": None if self.palette is None else [list(c) for c in self.palette],
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """A DANet from a named preset or a preset directory, with its weights.

        Args:
            preset: a name of `danet_keras.models.presets.PRESETS` (e.g.
                `"danet_resnet101_cityscapes"`) or a preset directory in
                keras-hub's layout (`config.json`, `model.weights.h5`,
                `metadata.json`), as `save_to_preset` and
                `danet-keras convert --preset-dir` write it.
            load_weights: load the preset's weights. A named preset's come
                from the local preset cache, where `danet-keras convert
                CHECKPOINT --preset NAME` puts them (a FileNotFoundError says
                where to download the checkpoint when they are missing); a
                preset without published weights builds fresh weights. False:
                the configuration with fresh weights.
            **overrides: DANet arguments that replace the preset's (ones that
                keep every weight's shape when weights are loaded, e.g.
                `attention_block_size`), and backbone arguments, which reach
                the backbone (`output_stride`, `multi_grid`; `sync_batchnorm`
                reaches both the head and the backbone).

        Returns:
            A `DANet`.
        """
        if preset_io.is_preset_dir(preset):
            return preset_io.load_preset_model(preset, cls, load_weights, overrides)
        entry = presets.preset(preset)
        if load_weights and entry["weights"]:
            directory = preset_io.local_preset_dir(preset)
            if directory is None:
                raise FileNotFoundError(presets.missing_weights_message(preset))
            return preset_io.load_preset_model(directory, cls, True, overrides)
        return cls(**presets.preset_config(preset, **overrides))

    def save_to_preset(self, directory, metadata=None, overwrite=False):
        """Writes this model as a preset directory (`config.json`, `model.weights.h5`, ...).

        Args:
            directory: where to write: a new or empty folder, or (with
                `overwrite=True`) a preset that danet-keras wrote, which is
                replaced atomically.
            metadata: extra facts for `metadata.json` (e.g. the source).
            overwrite: replace a preset written earlier.

        Returns:
            `directory`.
        """
        return preset_io.save_preset(self, directory, metadata, overwrite=overwrite)

    @property
    def head_layers(self):
        """The layers outside the backbone (the head), e.g. for a 10x learning rate."""
        return [layer for layer in self.layers if layer is not self.backbone]
