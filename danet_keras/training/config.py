"""What a training run is: `TrainConfig`, and the datasets' training recipes.

Every field left `None` takes the value of the dataset's recipe (the dataset
registry's, `danet_keras.data.registry`); everything else can be overridden.
`resolve_config` fills the recipe in and checks every field, so that a bad
name or number fails before TensorFlow starts.
"""

import dataclasses
import json
from typing import Optional, Union

from danet_keras.data.registry import (
    DATASET_REGISTRY,
    IGNORE_INDEX,
    reader_names,
    training_recipe,
)
from danet_keras.models.preset_io import is_preset_dir
from danet_keras.models.presets import preset
from danet_keras.optimizers.paper_settings import (
    HEAD_LR_MULTIPLIER,
    MOMENTUM,
    POLY_POWER,
    WEIGHT_DECAY,
)
from danet_keras.training.strategy import STRATEGIES

# The datasets' training recipes (the registry's): crop, batch, learning rate and epochs; the
# demo city's also its model and augmentation.
TRAINING_RECIPES = {name: training_recipe(name) for name in DATASET_REGISTRY}
# The fields of `TrainConfig` that a recipe sets when they are unset (None).
RECIPE_NUMBERS = ("crop_size", "batch_size", "learning_rate", "epochs")


def validated_epochs(epochs, validation_freq):
    """The 1-based epochs `model.fit` validates: every `validation_freq`-th, and the last.

    The last epoch's model is always scored, so the best checkpoint exists and
    can be the final model.

    Returns:
        A sorted list, for `model.fit(validation_freq=...)`.
    """
    return sorted(set(range(validation_freq, epochs + 1, validation_freq)) | {epochs})


def known_datasets():
    """Dataset names `TrainConfig.dataset` accepts (besides `"tfds:<name>"`)."""
    return reader_names() + ["custom"]


def recipe_fields(dataset):
    """The `TrainConfig` fields of a dataset's training recipe (its `source` line left out)."""
    recipe = training_recipe(dataset)
    recipe.pop("source", None)
    return recipe


@dataclasses.dataclass
class TrainConfig:
    """Settings of `danet_keras.train`.

    Attributes:
        dataset: a reader of `danet_keras.data.load_dataset` (`"cityscapes"`,
            `"demo_city"`, `"ade20k"`, ..., `"folder"`, `"tfds:<name>"`), or
            `"custom"` with `train(..., train_data=...)`.
        data_dir: root directory of the dataset.
        train_split, val_split: split names for the reader.
        reader_options: keyword arguments of the reader (e.g.
            `class_names` for `"folder"`, `skip_invalid=True`).
        preset: None, a name of `danet_keras.models.presets.PRESETS` or a
            preset directory: the model's configuration (and the dataset,
            when `dataset` is not given), and with `preset_weights` its
            weights.
        preset_weights: start from the preset's weights: a directory's, or a
            named preset's published ones (downloaded on first use, see
            `DANet.from_preset`); a preset of another class count is
            fine-tuned (its classifiers start fresh). False: its configuration
            with fresh weights, or with `model["backbone_weights"]`.
        model: `DANet` keyword arguments (`backbone`, `output_stride`,
            `aux_head`, `multi_grid`, `stem`, `head_channels`,
            `align_corners`, `backbone_weights`, ...), over the preset's;
            without a preset, over the dataset recipe's model (the demo
            city's ResNet-18), else `{"backbone": "resnet50"}`.
        num_classes: None for the dataset's class count.
        crop_size: training crop (square); None: the dataset's recipe.
        batch_size: global batch size (all replicas); None: the dataset's recipe.
        epochs: None: the dataset's recipe.
        steps_per_epoch: None: training images // batch size.
        learning_rate: base (backbone) learning rate; None: the dataset's recipe.
        head_lr_multiplier: learning-rate factor of the head (10).
        momentum: SGD momentum (0.9).
        weight_decay: L2 weight decay on kernels (1e-4).
        poly_power: exponent of the poly schedule (0.9).
        warmup_steps: linear warm-up steps (0).
        loss_weights: {output name: weight}, overriding 1.0 for the fused,
            position and channel outputs and 0.4 for the auxiliary head.
        class_weights: None or one weight per class.
        ohem_threshold: None, or OHEM's probability threshold (e.g. 0.7).
        ohem_min_kept: OHEM's minimum number of pixels per replica batch.
        ignore_index: label ignored by the losses and the metric.
        sync_batchnorm: synchronise BatchNorm statistics over replicas.
        remat: rematerialise the backbone's residual blocks (`DANet`'s
            `remat`): the backward pass recomputes their activations instead
            of keeping them, for less memory and one more forward pass of
            the backbone.
        strategy: one of `STRATEGIES`.
        tpu: TPU name/address for `strategy="tpu"`.
        mixed_precision: float16 compute on GPU, bfloat16 on TPU/CPU.
        output_dir: where checkpoints, logs and the backup go: a new or
            empty folder, or an earlier run's (which is resumed).
        backup: back up the training state (`BackupAndRestore`) to resume
            an interrupted run by running the same command again.
        backup_freq: `"epoch"` or a number of steps between backups.
        tensorboard: write TensorBoard logs.
        validation: evaluate mIoU on the validation split after epochs.
        validation_freq: validate every this many epochs; None: the dataset
            recipe's (1 unless it says otherwise).
        validation_steps: None for the whole validation split.
        val_batch_size: validation batch size; None: the dataset recipe's,
            else one image per replica (images of different sizes).
        data_options: keyword arguments of `danet_keras.data.train_pipeline`
            (e.g. `scale_range`, `cache`), over the dataset recipe's.
        eval_options: keyword arguments of `danet_keras.data.eval_pipeline`
            for validation (e.g. `short_side`).
        seed: random seed (None: not seeded).
        verbose: `model.fit` verbosity ("auto", 0, 1, 2).
    """

    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    train_split: str = "train"
    val_split: str = "val"
    reader_options: dict = dataclasses.field(default_factory=dict)
    preset: Optional[str] = None
    preset_weights: bool = True
    model: dict = dataclasses.field(default_factory=dict)
    num_classes: Optional[int] = None
    crop_size: Optional[int] = None
    batch_size: Optional[int] = None
    epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    learning_rate: Optional[float] = None
    # The recipe's numbers (`DANet.compile()`'s), written once in `optimizers.paper_settings`.
    head_lr_multiplier: float = HEAD_LR_MULTIPLIER
    momentum: float = MOMENTUM
    weight_decay: float = WEIGHT_DECAY
    poly_power: float = POLY_POWER
    warmup_steps: int = 0
    loss_weights: Optional[dict] = None
    class_weights: Optional[list] = None
    ohem_threshold: Optional[float] = None
    ohem_min_kept: int = 100000
    ignore_index: int = IGNORE_INDEX
    sync_batchnorm: bool = True
    remat: bool = False
    strategy: str = "auto"
    tpu: Optional[str] = None
    mixed_precision: bool = False
    output_dir: str = "runs/danet"
    backup: bool = True
    backup_freq: Union[str, int] = "epoch"
    tensorboard: bool = True
    validation: bool = True
    validation_freq: Optional[int] = None
    validation_steps: Optional[int] = None
    val_batch_size: Optional[int] = None
    data_options: dict = dataclasses.field(default_factory=dict)
    eval_options: dict = dataclasses.field(default_factory=dict)
    seed: Optional[int] = 0
    verbose: Union[str, int] = "auto"

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=str)


def _positive_int(config, name):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")


def _check_model(fields):
    model = fields.get("model") or {}
    if not isinstance(model, dict):
        raise ValueError(f"`model` must be a dict of DANet arguments, got {model!r}.")
    fields["model"] = dict(model)
    return fields


def resolve_config(config=None, **overrides):
    """A complete, checked `TrainConfig`.

    Args:
        config: a `TrainConfig`, a dict of its fields, or None.
        **overrides: fields that replace `config`'s.

    Returns:
        A new `TrainConfig` with the preset's dataset and the dataset
        recipe's values filled in.

    Raises:
        ValueError: an unknown field, dataset, preset or strategy, or a
            value out of range. (Model arguments are checked by the model.)
    """
    if config is None:
        fields = {}
    elif isinstance(config, TrainConfig):
        fields = dataclasses.asdict(config)
    elif isinstance(config, dict):
        fields = dict(config)
    else:
        raise ValueError(
            f"`config` must be a TrainConfig, a dict or None, got {type(config).__name__}."
        )
    fields.update(overrides)
    fields = _check_model(fields)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"Unknown training settings {unknown}; known: {sorted(known)}.")
    config = TrainConfig(**fields)

    if config.preset is not None:
        if not is_preset_dir(config.preset):
            entry = preset(config.preset)  # raises for an unknown name
            if config.dataset is None:
                config.dataset = entry["dataset"]
    if config.model.get("backbone_weights") and _preset_has_weights(config):
        raise ValueError(
            f"`model['backbone_weights']` and the weights of preset {config.preset!r} would both "
            "be the starting point: set preset_weights=False (--no-preset-weights) to train the "
            "preset's configuration from those backbone weights."
        )
    if config.dataset is None:
        config.dataset = "cityscapes"
    if not config.dataset.startswith("tfds:") and config.dataset not in known_datasets():
        raise ValueError(
            f"`dataset` must be one of {known_datasets()} or 'tfds:<name>' ('custom' with your "
            f"own tf.data datasets), got {config.dataset!r}."
        )
    if config.strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {config.strategy!r}.")
    recipe = recipe_fields(config.dataset)
    for name in RECIPE_NUMBERS:
        if getattr(config, name) is None:
            setattr(config, name, recipe[name])
    # The recipe's model (without a preset, which has its own) and augmentation, under the
    # settings given.
    if not config.preset:
        config.model = {**recipe.get("model", {}), **config.model}
    config.data_options = {**recipe.get("data_options", {}), **config.data_options}
    # Optional in a recipe: how often, and in batches of how many images, it validates.
    if config.validation_freq is None:
        config.validation_freq = recipe.get("validation_freq", 1)
    if config.val_batch_size is None:
        config.val_batch_size = recipe.get("val_batch_size")
    for name in ("crop_size", "batch_size", "epochs", "validation_freq", "ohem_min_kept"):
        _positive_int(config, name)
    for name in ("steps_per_epoch", "validation_steps", "val_batch_size", "num_classes"):
        if getattr(config, name) is not None:
            _positive_int(config, name)
    if not float(config.learning_rate) > 0:
        raise ValueError(f"`learning_rate` must be > 0, got {config.learning_rate!r}.")
    if config.backup_freq != "epoch":
        _positive_int(config, "backup_freq")
        if not config.backup:
            raise ValueError("`backup_freq` is set but `backup` is off (--no-backup).")
    if (
        isinstance(config.warmup_steps, bool)
        or not isinstance(config.warmup_steps, int)
        or config.warmup_steps < 0
    ):
        raise ValueError(f"`warmup_steps` must be an integer >= 0, got {config.warmup_steps!r}.")
    if config.head_lr_multiplier <= 0 or config.weight_decay < 0 or not 0 <= config.momentum <= 1:
        raise ValueError(
            "`head_lr_multiplier` must be > 0, `weight_decay` >= 0 and `momentum` in [0, 1]; got "
            f"{config.head_lr_multiplier}, {config.weight_decay}, {config.momentum}."
        )
    return config


def _preset_has_weights(config):
    if not (config.preset and config.preset_weights):
        return False
    return is_preset_dir(config.preset) or bool(preset(config.preset)["weights"])


def starting_weights(config):
    """What a run of resolved `config` starts from: `"preset"`, `"backbone_weights"` or None.

    None is random weights, which `danet_keras.train` says before it starts.
    """
    if _preset_has_weights(config):
        return "preset"
    if config.model.get("backbone_weights"):
        return "backbone_weights"
    return None
