"""DANet: a dilated ResNet with the dual-attention head (Fu et al., CVPR 2019).

A keras-hub-style task: `compile()` with no arguments gives the paper's
recipe, `fit` takes plain label maps, `predict_class_map` gives class ids at
each image's size, and `from_preset(name)` downloads published weights (and
fine-tunes them to other classes with `num_classes=K`).
"""

import inspect

import keras
import numpy as np

from danet_keras.data.classes import check_class_names, check_palette
from danet_keras.data.registry import IGNORE_INDEX
from danet_keras.layers.attention import ChannelAttention, PositionAttention
from danet_keras.layers.conv_blocks import ConvBlockFactory
from danet_keras.layers.normalization import ImageNormalization
from danet_keras.layers.resize import ResizeLike
from danet_keras.losses import SegmentationCrossEntropy, segmentation_losses
from danet_keras.metrics import MeanIoU
from danet_keras.models import preset_io, presets
from danet_keras.models.conversion.checkpoint import require_torch
from danet_keras.models.conversion.loader import converted_model, converted_preset_metadata
from danet_keras.models.dilated_resnet import DilatedResNet
from danet_keras.models.presets import BACKBONE_PRESETS
from danet_keras.optimizers.paper_settings import BASE_LEARNING_RATE
from danet_keras.optimizers.recipe import paper_optimizer, schedule_awaiting_length
from danet_keras.optimizers.schedules import PolyLengthFromFit

ATTENTIONS = ("position", "channel")
# The 1x1 convolutions that map features to classes end with this name; fine-tuning to
# other classes builds them fresh.
CLASSIFIER_SUFFIX = "_classifier"


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
    depth = config.pop("depth")
    imagenet = presets.imagenet_backbone_preset(depth)
    if config.pop("block_layout", "torch") != "keras" or imagenet is None:
        # The layout stays the one asked for: ImageNet weights exist in keras.applications'.
        ask_for = (
            f"backbone={imagenet!r}"
            if imagenet
            else "backbone='resnet50_imagenet', 'resnet101_imagenet' or 'resnet152_imagenet'"
        )
        raise ValueError(
            f"`backbone_weights={backbone_weights!r}` are keras.applications ResNet weights "
            "(depths 50, 101, 152), which fit the keras.applications block layout only, and "
            f"backbone {name!r} of depth {depth} is not in that layout: ask for {ask_for} (or "
            "block_layout='keras')."
        )
    if backbone_weights == "imagenet":
        return DilatedResNet.from_preset(imagenet, **config)
    return DilatedResNet.from_keras_applications(depth, backbone_weights, **config)


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
        remat: rematerialise the backbone's residual blocks in training
            (`DilatedResNet`'s `remat`: less memory for one more forward pass
            of the backbone). None keeps the backbone's setting (off for a
            name); True or False sets it, on a given backbone too.
        output_stride, multi_grid, stem, stem_width, block_layout,
            input_shape: `DilatedResNet` arguments, with a backbone name only
            (None: the preset's).
        backbone_weights: with a backbone name only: None (random
            weights), `"imagenet"` or the path of a keras.applications ResNet
            weights file. They fit keras.applications' block layout only, so
            the backbone must be one in it (`"resnet50_imagenet"`,
            `"resnet101_imagenet"`, `"resnet152_imagenet"`, or
            `block_layout="keras"`); `"imagenet"` downloads them once into the
            preset cache (`DilatedResNet.from_preset("resnet50_imagenet")`).
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

    model.compile()  # the paper's recipe
    model.fit(images, label_maps, epochs=2)  # label_maps: (B, H, W), 255 ignored
    class_ids = model.predict_class_map(images)  # (B, H, W)

    # Published weights by name, fine-tuned to 5 classes:
    model = danet_keras.DANet.from_preset("danet_resnet101_d8_ade20k_mmseg", num_classes=5)
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
        remat=None,
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
        if remat is not None:
            backbone.remat = bool(remat)
        in_channels = backbone.stage_channels[3]
        head_channels = in_channels // 4 if head_channels is None else int(head_channels)
        blocks = ConvBlockFactory(sync_batchnorm=sync_batchnorm)

        def classify(x, name):
            x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
            return keras.layers.Conv2D(num_classes, 1, name=f"{name}{CLASSIFIER_SUFFIX}")(x)

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
            "remat": self.remat,
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
                `"danet_resnet101_d8_ade20k_mmseg"`) or a preset directory in
                keras-hub's layout (`config.json`, `model.weights.h5`,
                `metadata.json`), as `save_to_preset` and
                `danet-keras convert --preset-dir` write it.
            load_weights: load the preset's weights. A named preset's come
                from the local preset cache; the first call for a preset whose
                checkpoint has a published hash (mmsegmentation's) downloads
                it, checks it, converts it and installs it there (needs torch
                to read it). Others (the official release on Google Drive) are
                installed by hand with `danet-keras convert FILE --preset NAME`
                (a FileNotFoundError says so). A preset without published
                weights builds fresh weights. False: the configuration with
                fresh weights.
            **overrides: DANet arguments that replace the preset's, and
                backbone arguments, which reach the backbone (`output_stride`,
                `multi_grid`; `sync_batchnorm` reaches both the head and the
                backbone). With weights, they must keep every weight's shape
                (e.g. `attention_block_size`), except `num_classes`: another
                class count keeps the backbone's and the attention head's
                weights and builds fresh classifiers, for fine-tuning (with
                `class_names`/`palette` of the new classes, or none).

        Returns:
            A `DANet`.

        Raises:
            FileNotFoundError: weights published where they cannot be
                downloaded, and not installed.
            danet_keras.utils.download.DownloadFailed: (an OSError) the
                download failed or its hash differs; one line naming the URL,
                the cache folder and `danet-keras convert`.
        """
        if preset_io.is_preset_dir(preset):
            directory = preset
        else:
            entry = presets.preset(preset)
            if not (load_weights and entry["weights"]):
                return cls(**presets.preset_config(preset, **overrides))
            directory = preset_io.local_preset_dir(preset) or cls._install_published(preset)
        saved = preset_io.read_json(directory, preset_io.CONFIG_FILE)["config"]["num_classes"]
        if overrides.get("num_classes", saved) == saved:
            return preset_io.load_preset_model(directory, cls, load_weights, overrides)
        # The saved class names and colours belong to the saved classes.
        overrides = {"class_names": None, "palette": None, **overrides}
        if not load_weights:
            return preset_io.load_preset_model(directory, cls, False, overrides)
        return cls._with_fresh_classifiers(directory, overrides)

    @classmethod
    def _install_published(cls, name):
        """Downloads, checks, converts and installs the published checkpoint of preset `name`."""
        weights = presets.preset(name)["weights"]
        if "hash" not in weights:
            raise FileNotFoundError(presets.missing_weights_message(name))
        require_torch(f"Converting the checkpoint of preset {name!r}")

        def build(path):
            return converted_model(cls, path, weights["arch"], preset=name)[0]

        return preset_io.install_preset(
            name,
            weights["url"],
            weights["hash"],
            build,
            metadata=converted_preset_metadata(name, weights["arch"], weights["url"]),
            manual_step=(
                "When online, call again; or download the file yourself and install it with "
                f"{presets.convert_command(name)}."
            ),
        )

    @classmethod
    def _with_fresh_classifiers(cls, directory, overrides):
        """The preset of `directory` with another class count: its weights but the classifiers'."""
        same_classes = {
            k: v for k, v in overrides.items() if k not in ("num_classes", "class_names", "palette")
        }
        trained = preset_io.load_preset_model(directory, cls, True, same_classes)
        model = preset_io.load_preset_model(directory, cls, False, overrides)
        fresh = model.classifier_layers
        for layer in model.layers:
            if layer not in fresh:
                layer.set_weights(trained.get_layer(layer.name).get_weights())
        return model

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
    def remat(self):
        """Whether the backbone's residual blocks are rematerialised in training."""
        return self.backbone.remat

    @remat.setter
    def remat(self, value):
        self.backbone.remat = bool(value)

    @property
    def head_layers(self):
        """The layers outside the backbone (the head), e.g. for a 10x learning rate."""
        return [layer for layer in self.layers if layer is not self.backbone]

    @property
    def classifier_layers(self):
        """The 1x1 convolutions that map features to classes (fresh when fine-tuning)."""
        return [layer for layer in self.layers if layer.name.endswith(CLASSIFIER_SUFFIX)]

    # === Training (keras-hub's task conventions) ===

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        metrics="auto",
        loss_weights=None,
        learning_rate=None,
        total_steps=None,
        ignore_index=None,
        **kwargs,
    ):
        """Configures the model for `fit`/`evaluate`; with no arguments, the paper's recipe.

        Args:
            optimizer: `"auto"`: `danet_keras.optimizers.paper_optimizer`:
                SGD with momentum 0.9 and PyTorch's (coupled) weight decay
                1e-4 on kernels (`LayerwiseSGD`), the head at 10x the
                backbone's learning rate, and a poly schedule (power 0.9) over
                `total_steps`. Or any Keras optimizer.
            loss: `"auto"`: a `SegmentationCrossEntropy(ignore_index)` on every
                output. One loss (a `keras.losses.Loss`, or a name or function
                Keras takes): that loss on every output. Both are weighted by
                `loss_weights`. A dict {output name: loss}: as Keras takes it.
            metrics: `"auto"`: `MeanIoU(num_classes, ignore_index)` on the
                fused `"logits"` output (logged as `logits_mean_iou` when the
                model has several outputs). Or as Keras takes them.
            loss_weights: with `"auto"` or one loss, None or {output name:
                weight} over the recipe's (1.0 for `logits`,
                `position_logits` and `channel_logits`, 0.4 for `aux_logits`;
                0 drops that output's loss). With a dict of losses, as Keras
                takes them.
            learning_rate: the `"auto"` optimizer's base (backbone) learning
                rate; None: 0.01 (the paper's).
            total_steps: the `"auto"` optimizer's schedule length (optimizer
                steps of the whole run); None: `fit` sets it to its epochs x
                steps per epoch, the first time it runs (a later `fit`
                continues the same schedule; `compile` again for a new one).
                `train_on_batch` alone needs it given.
            ignore_index: the label that the `"auto"` loss and metric ignore;
                None: 255.
            **kwargs: other `keras.Model.compile` arguments.
        """
        auto_optimizer = isinstance(optimizer, str) and optimizer == "auto"
        auto_loss = isinstance(loss, str) and loss == "auto"
        auto_metrics = isinstance(metrics, str) and metrics == "auto"
        if not auto_optimizer and (learning_rate is not None or total_steps is not None):
            raise ValueError(
                "`learning_rate` and `total_steps` configure optimizer='auto'; give your "
                "optimizer its own."
            )
        if not (auto_loss or auto_metrics) and ignore_index is not None:
            raise ValueError(
                "`ignore_index` configures loss='auto' and metrics='auto'; give your loss and "
                "metrics their own."
            )
        ignore_index = IGNORE_INDEX if ignore_index is None else ignore_index
        if auto_optimizer:
            learning_rate = BASE_LEARNING_RATE if learning_rate is None else learning_rate
            optimizer = paper_optimizer(self, learning_rate, total_steps)
        if auto_loss:
            loss = SegmentationCrossEntropy(ignore_index=ignore_index)
        if loss is not None and not isinstance(loss, (dict, list, tuple)):
            loss, loss_weights = segmentation_losses(self.output_names, loss_weights, loss=loss)
        if auto_metrics:
            metrics = {"logits": [MeanIoU(self.num_classes, ignore_index=ignore_index)]}
        super().compile(
            optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics, **kwargs
        )

    def compile_from_config(self, config):
        """Compiles with a saved compile config, as a loaded `.keras` file does.

        The config holds what `compile` gave Keras (the optimizer, the losses
        by output, the metrics), so the recipe's defaults do not apply again.
        """
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            # Its variables exist before the saved optimizer state is loaded into them.
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, which also sets the length of a poly schedule that has none.

        With `compile()`'s default optimizer and no `total_steps`, the poly
        schedule lasts this call's `epochs` x steps per epoch (the data's
        batches, or `steps_per_epoch`).
        """
        arguments = inspect.signature(super().fit).bind(*args, **kwargs).arguments
        schedule = schedule_awaiting_length(self.optimizer)
        if schedule is not None:
            callbacks = arguments.get("callbacks") or []
            if isinstance(callbacks, keras.callbacks.CallbackList):
                callbacks.append(PolyLengthFromFit(schedule))
            else:
                arguments["callbacks"] = [*callbacks, PolyLengthFromFit(schedule)]
        return super().fit(**arguments)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`keras.Model.compute_loss`, with a plain label map given to every output."""
        y = _labels_for_every_output(y, y_pred)
        return super().compute_loss(x, y, y_pred, sample_weight, training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """`keras.Model.compute_metrics`, with a plain label map given to every output."""
        y = _labels_for_every_output(y, y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # === Inference ===

    def predict_class_map(self, images, batch_size=None, return_probabilities=False, verbose=0):
        """The class id of every pixel, at each image's own size.

        Args:
            images: RGB pixel values in [0, 255] (any dtype): a batch
                (B, H, W, 3), or a list of (H, W, 3) images of any sizes
                (images of one size run together).
            batch_size: images per forward pass (`predict`'s; None: 32).
            return_probabilities: also return the class probabilities (the
                fused logits' softmax).
            verbose: `predict`'s verbosity.

        Returns:
            For a batch, (B, H, W) int32 class ids; for a list, a list of
            (H, W) arrays, one per image. With `return_probabilities`, a
            tuple of those and the (..., num_classes) float32 probabilities
            in the same form.
        """
        if isinstance(images, (list, tuple)):
            arrays = [np.asarray(image) for image in images]
            for index, array in enumerate(arrays):
                if array.ndim != 3 or array.shape[-1] != 3:
                    raise ValueError(
                        f"images[{index}] must be one (H, W, 3) RGB image, got shape {array.shape}."
                    )
            by_size = {}
            for index, array in enumerate(arrays):
                by_size.setdefault(array.shape, []).append(index)
            class_maps, probabilities = [None] * len(arrays), [None] * len(arrays)
            for indices in by_size.values():
                batch = np.stack([arrays[i] for i in indices])
                ids, probs = self._class_maps(batch, batch_size, return_probabilities, verbose)
                for position, index in enumerate(indices):
                    class_maps[index] = ids[position]
                    probabilities[index] = None if probs is None else probs[position]
        else:
            batch = np.asarray(images)
            if batch.ndim != 4 or batch.shape[-1] != 3:
                raise ValueError(
                    f"`images` must be a batch (B, H, W, 3) or a list of (H, W, 3) images, got "
                    f"shape {batch.shape}."
                )
            class_maps, probabilities = self._class_maps(
                batch, batch_size, return_probabilities, verbose
            )
        return (class_maps, probabilities) if return_probabilities else class_maps

    def _class_maps(self, batch, batch_size, return_probabilities, verbose):
        logits = self.predict(batch, batch_size=batch_size, verbose=verbose)["logits"]
        class_ids = np.argmax(logits, axis=-1).astype(np.int32)
        if not return_probabilities:
            return class_ids, None
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
        return class_ids, probabilities.astype(np.float32)


def _labels_for_every_output(y, y_pred):
    """`y` for each output of `y_pred` when it is one label map (Keras wants one per output)."""
    if isinstance(y_pred, dict) and y is not None and not isinstance(y, (dict, list, tuple)):
        return dict.fromkeys(y_pred, y)
    return y
