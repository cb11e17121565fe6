"""`danet_keras.train`: the paper's recipe on `model.fit`, under the strategy of the backend.

Any Keras backend (KERAS_BACKEND): under TensorFlow a `tf.distribute`
strategy, under JAX one device or `keras.distribution.DataParallel`, under
PyTorch one device (`training.strategy.make_strategy`); the input pipeline is
`tf.data` on all three.

One call builds the strategy, the data pipelines, the DANet (synchronised
BatchNorm) compiled with the recipe of `DANet.compile` (the three or four
cross-entropy losses, `LayerwiseSGD` with the poly schedule and the 10x head
learning rate, `MeanIoU`) under the run's settings, and the callbacks, then
runs `model.fit`. Running the same call again after a crash or preemption resumes
from the backup in `output_dir/backup`.

The run owns `output_dir` (`danet_keras.utils.output_paths.own_folder`): a new or
empty folder, or one that a training run wrote (to resume); a folder holding
anything else, or the current folder, is refused before training starts.

Files under `output_dir` (the chief's; other workers of a multi-worker job
write theirs under `output_dir/workers/<task>`):

    config.json        the resolved TrainConfig
    backup/            the last published backup (removed once final.keras is saved)
    best.keras         the model with the best validation mIoU (+ best.json)
    final.keras        the model after the last epoch
    history.csv        per-epoch losses and mIoU (appended across resumes)
    logs/              TensorBoard
"""

import dataclasses
import json
import math
import os
import shutil
import sys
from typing import Optional

import numpy as np

from danet_keras.data.classes import dataset_classes
from danet_keras.training.config import resolve_config, starting_weights, validated_epochs
from danet_keras.training.strategy import (
    KerasDistribution,
    is_chief,
    make_strategy,
    task_identity,
)
from danet_keras.utils.atomic_io import atomic_path, remove_partials, write_text
from danet_keras.utils.output_paths import check_owned_folder, is_other_output, own_folder


def monitor_key(model):
    """Log key of the fused output's validation mIoU under `model.fit`.

    Keras prefixes a metric's name with its output's name only when the model
    has several outputs (the dual-attention DANet has three).
    """
    return "val_logits_mean_iou" if len(model.output_names) > 1 else "val_mean_iou"


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained DANet (weights of the last epoch).
        history: {log key: list of per-epoch values} of this call's epochs.
        config: the resolved `TrainConfig`.
        output_dir: this worker's output directory.
        best_checkpoint: path of `best.keras`, or None without validation.
        best_mean_iou: its validation mIoU, or None.
        final_model: path of `final.keras`, or None when training stopped on
            a NaN loss.
        stopped_on_nan: True when `TerminateOnNaN` stopped the run; the last
            good backup and checkpoint are kept.
        skipped: {split name: `SkipTally`} of the dataset splits read (empty
            for custom data): how many examples were skipped as invalid and
            why (`reader_options={"skip_invalid": True}`).
    """

    model: object
    history: dict
    config: object
    output_dir: str
    best_checkpoint: Optional[str]
    best_mean_iou: Optional[float]
    final_model: Optional[str]
    stopped_on_nan: bool
    skipped: dict = dataclasses.field(default_factory=dict)


def fit_verbosity(verbose):
    """`model.fit`'s verbosity: for "auto", a progress bar on a terminal, one line per epoch else.

    (A progress bar written to a file or a pipe is a stream of carriage returns.)
    """
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


TRAINING_RUN_KIND = "training_run"


def worker_output_dir(output_dir):
    """`output_dir` on the chief, `output_dir/workers/<type>_<index>` on other workers."""
    if is_chief():
        return output_dir
    task_type, task_index = task_identity()
    return os.path.join(output_dir, "workers", f"{task_type}_{task_index}")


def _mixed_precision_policy(strategy):
    """float16 compute on GPUs, bfloat16 on TPUs and CPUs."""
    if isinstance(strategy, KerasDistribution):
        return "mixed_float16" if strategy.device_type == "gpu" else "mixed_bfloat16"
    # deferred: Keras/TensorFlow load after train() builds its strategy
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy) or not tf.config.list_logical_devices("GPU"):
        return "mixed_bfloat16"
    return "mixed_float16"


def check_labels(dataset, num_classes, ignore_index, batches=2):
    """Raises when the first batches hold labels outside [0, num_classes) other than `ignore_index`.

    Args:
        dataset: `tf.data.Dataset` of `(images, labels)`.
        num_classes: the model's class count.
        ignore_index: the ignored label.
        batches: how many batches to look at.

    Raises:
        ValueError: naming the offending label values.
    """
    for _, labels in dataset.take(batches):
        values = np.unique(np.asarray(labels))
        bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
        if bad.size:
            raise ValueError(
                f"The labels hold values {bad.tolist()[:10]} outside "
                f"[0, num_classes={num_classes}) "
                f"(ignore index {ignore_index}): `num_classes` disagrees with the data."
            )


def _steps_of(dataset, name):
    # deferred: Keras/TensorFlow load after train() builds its strategy
    import tensorflow as tf

    cardinality = int(dataset.cardinality())
    if cardinality in (tf.data.INFINITE_CARDINALITY, tf.data.UNKNOWN_CARDINALITY):
        raise ValueError(f"`steps_per_epoch` is needed: the size of `{name}` is not known.")
    if cardinality == 0:
        raise ValueError(f"`{name}` is empty.")
    return cardinality


def _open_splits(config):
    """The training and validation `DatasetSplit`s of `config.dataset`."""
    # deferred: Keras/TensorFlow load after train() builds its strategy
    from danet_keras.data import load_dataset

    train_split = load_dataset(
        config.dataset, config.data_dir, config.train_split, **config.reader_options
    )
    if len(train_split) == 0:
        raise FileNotFoundError(
            f"No training images in {config.data_dir} ({config.dataset}, {config.train_split})."
        )
    val_split = None
    if config.validation:
        val_split = load_dataset(
            config.dataset, config.data_dir, config.val_split, **config.reader_options
        )
        if len(val_split) == 0:
            raise FileNotFoundError(
                f"No validation images in {config.data_dir} ({config.dataset}, {config.val_split})."
            )
    return train_split, val_split


def _reader_datasets(config, strategy, train_split, val_split):
    """Distributed training/validation datasets: each input pipeline reads its own files."""
    # deferred: Keras/TensorFlow load after train() builds its strategy
    from danet_keras.data import eval_pipeline, train_pipeline

    def train_fn(context):
        return train_pipeline(
            train_split,
            config.crop_size,
            config.batch_size,
            seed=config.seed,
            input_context=context,
            ignore_index=config.ignore_index,
            **config.data_options,
        ).repeat()

    def val_fn(context):
        batch_size = config.val_batch_size or strategy.num_replicas_in_sync
        return eval_pipeline(
            val_split,
            batch_size,
            input_context=context,
            ignore_index=config.ignore_index,
            **config.eval_options,
        )

    train = strategy.distribute_datasets_from_function(train_fn)
    val = None if val_split is None else strategy.distribute_datasets_from_function(val_fn)
    return train, val


def _callbacks(config, output_dir, steps_per_epoch, monitor, extra):
    # deferred: Keras/TensorFlow load after train() builds its strategy
    import keras

    from danet_keras.training.callbacks import (
        AlignEpochsToSteps,
        BestCheckpoint,
        HistoryCSV,
        SafeBackupAndRestore,
        TimeEstimate,
    )

    callbacks = [keras.callbacks.TerminateOnNaN()]
    # What the run will take, printed after its first steps (unless the caller brings its own).
    if (
        is_chief()
        and fit_verbosity(config.verbose)
        and not any(isinstance(callback, TimeEstimate) for callback in extra)
    ):
        callbacks.append(TimeEstimate(config.validation_freq if monitor else 0))
    if monitor:
        callbacks.append(
            BestCheckpoint(
                os.path.join(output_dir, "best.keras"),
                monitor,
                os.path.join(output_dir, "best.json"),
                verbose=int(is_chief()),
            )
        )
    resuming = config.backup and os.path.exists(os.path.join(output_dir, "backup"))
    callbacks.append(HistoryCSV(os.path.join(output_dir, "history.csv"), append=resuming))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
    if config.backup:
        # After the epoch's checkpoint and log: its epoch-end backup comes last.
        callbacks.append(
            SafeBackupAndRestore(os.path.join(output_dir, "backup"), save_freq=config.backup_freq)
        )
    callbacks.extend(extra)
    # Last: it must see whether another callback stopped training.
    callbacks.append(AlignEpochsToSteps(steps_per_epoch))
    return callbacks


RANDOM_START_WARNING = (
    "warning: training starts from random weights (no preset weights, no backbone_weights). "
    "For pretrained ones: a preset with published weights (`--preset NAME`, `preset=NAME`; "
    "`danet-keras info` lists them), or ImageNet weights (`--backbone resnet50_imagenet "
    "--backbone-weights imagenet`, `model={'backbone': 'resnet50_imagenet', "
    "'backbone_weights': 'imagenet'}`)."
)


def build_model(config, num_classes, classes=None):
    """The DANet a resolved `TrainConfig` describes, with its starting weights.

    Without a preset: `DANet(num_classes, **config.model)` (ResNet-50 by
    default). With a preset (a name or a directory), through
    `DANet.from_preset` with `config.model`, `config.sync_batchnorm` and
    `config.remat` as overrides: with `config.preset_weights`, from its weights (a directory's,
    or a named preset's published weights, downloaded on first use; a preset
    trained on another number of classes keeps its weights but the
    classifiers'), else from its configuration.

    Args:
        config: a resolved `TrainConfig`.
        num_classes: the dataset's class count.
        classes: None, or the dataset's `DatasetInfo`: the model carries its
            class names and colours (unless `config.model` sets them).

    Returns:
        A `DANet`.
    """
    # deferred: Keras/TensorFlow load after train() builds its strategy
    from danet_keras.models.danet import DANet

    settings = dict(config.model, sync_batchnorm=config.sync_batchnorm, remat=config.remat)
    if classes is not None:
        settings = {**dataset_classes(classes), **settings}
    if not config.preset:
        return DANet(num_classes=num_classes, **{"backbone": "resnet50", **settings})
    return DANet.from_preset(
        config.preset,
        load_weights=config.preset_weights,
        **dict(settings, num_classes=num_classes),
    )


def build_training_model(config, num_classes, total_steps, classes=None):
    """DANet compiled with `DANet.compile`'s recipe under the run's settings.

    Call it inside `strategy.scope()`.

    Args:
        config: a resolved `TrainConfig`.
        num_classes: number of classes.
        total_steps: optimizer steps of the whole run (for the poly schedule).
        classes: None, or the dataset's `DatasetInfo` (see `build_model`).

    Returns:
        The compiled model (it takes plain `(images, labels)` batches).
    """
    # deferred: Keras/TensorFlow load after train() builds its strategy
    from danet_keras.losses import SegmentationCrossEntropy
    from danet_keras.optimizers.recipe import paper_optimizer

    model = build_model(config, num_classes, classes)
    model.compile(
        optimizer=paper_optimizer(
            model,
            config.learning_rate,
            total_steps,
            head_lr_multiplier=config.head_lr_multiplier,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            poly_power=config.poly_power,
            warmup_steps=config.warmup_steps,
        ),
        loss=SegmentationCrossEntropy(
            ignore_index=config.ignore_index,
            class_weights=config.class_weights,
            ohem_threshold=config.ohem_threshold,
            ohem_min_kept=config.ohem_min_kept,
        ),
        loss_weights=config.loss_weights,
        ignore_index=config.ignore_index,
    )
    return model


def train(config=None, train_data=None, val_data=None, strategy=None, callbacks=None, **overrides):
    """Trains a DANet with the paper's recipe on `model.fit`.

    Args:
        config: a `TrainConfig`, a dict of its fields, or None (defaults:
            Cityscapes preset, ResNet-50).
        train_data: optional `tf.data.Dataset` of `(images, labels)` batches
            of `batch_size` (global) to use instead of the dataset readers,
            or a function without arguments that returns one (needed with
            `"multi_worker"`, whose strategy must exist before any dataset);
            finite datasets are repeated.
        val_data: optional finite validation dataset of `(images, labels)`,
            or a function returning one.
        strategy: optional `tf.distribute.Strategy` (TensorFlow) or
            `training.strategy.KerasDistribution` (JAX, PyTorch) to use
            instead of `config.strategy`.
        callbacks: optional extra Keras callbacks (they run after the
            backup is restored).
        **overrides: `TrainConfig` fields, e.g. `epochs=2`.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError / FileNotFoundError: bad settings or data, before training
            starts.
    """
    config = resolve_config(config, **overrides)
    if train_data is None and config.dataset == "custom":
        raise ValueError("`dataset='custom'` needs `train_data` (and optionally `val_data`).")
    if train_data is None and not config.data_dir:
        raise ValueError(f"`data_dir` is needed to read the {config.dataset!r} dataset.")
    check_owned_folder(config.output_dir, TRAINING_RUN_KIND, "a training run")
    if starting_weights(config) is None and is_chief():
        print(RANDOM_START_WARNING, flush=True)

    # The strategy comes first: a multi-worker cluster must be set up before other TensorFlow work.
    if strategy is None:
        strategy = make_strategy(config.strategy, tpu=config.tpu)
    # deferred: Keras/TensorFlow load after train() builds its strategy
    import keras
    import tensorflow as tf

    if callable(train_data) and not isinstance(train_data, tf.data.Dataset):
        train_data = train_data()
    if callable(val_data) and not isinstance(val_data, tf.data.Dataset):
        val_data = val_data()

    replicas = strategy.num_replicas_in_sync
    for name in ("batch_size", "val_batch_size"):
        batch = getattr(config, name)
        if batch is not None and batch % replicas:
            raise ValueError(
                f"`{name}` {batch} is the global batch; it must be divisible by the "
                f"{replicas} replicas of the '{config.strategy}' strategy."
            )
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)

    train_split = val_split = None
    if train_data is None:
        train_split, val_split = _open_splits(config)
        info = train_split.info
        steps_per_epoch = config.steps_per_epoch or max(1, len(train_split) // config.batch_size)
        num_classes = config.num_classes or info.num_classes
        if num_classes != info.num_classes:
            raise ValueError(
                f"`num_classes` is {num_classes} but the {config.dataset} labels have "
                f"{info.num_classes} classes ({', '.join(info.class_names[:5])}, ...)."
            )
    else:
        steps_per_epoch = config.steps_per_epoch or _steps_of(train_data, "train_data")
        num_classes = config.num_classes
        if num_classes is None:
            raise ValueError("`num_classes` is needed with custom `train_data`.")
        check_labels(train_data, num_classes, config.ignore_index)
        if not config.validation:
            val_data = None

    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy(_mixed_precision_policy(strategy))
    try:
        with strategy.scope():
            model = build_training_model(
                config,
                num_classes,
                steps_per_epoch * config.epochs,
                classes=None if train_split is None else train_split.info,
            )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    # Only once the model is built: a run refused for its settings leaves no file behind.
    own_folder(config.output_dir, TRAINING_RUN_KIND, "a training run")
    output_dir = worker_output_dir(config.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    # What a killed writer of this run's folder left behind (every file here is written
    # atomically); never another live writer's, nor inside another artefact's folder.
    remove_partials(output_dir, skip=is_other_output)
    write_text(os.path.join(output_dir, "config.json"), config.to_json())

    if train_split is not None:
        fit_train, fit_val = _reader_datasets(config, strategy, train_split, val_split)
    else:
        fit_train = train_data.repeat().prefetch(tf.data.AUTOTUNE)
        fit_val = val_data
    monitor = monitor_key(model) if fit_val is not None else None
    callbacks = _callbacks(config, output_dir, steps_per_epoch, monitor, list(callbacks or []))
    verbose = fit_verbosity(config.verbose) if is_chief() else 0
    # In the scope too: a JAX distribution lays out each batch only inside it.
    with strategy.scope():
        history = model.fit(
            fit_train,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=fit_val,
            validation_steps=config.validation_steps,
            validation_freq=validated_epochs(config.epochs, config.validation_freq)
            if fit_val is not None
            else 1,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipelines shuffle
        )

    losses_seen = history.history.get("loss", [])
    stopped_on_nan = not all(math.isfinite(float(value)) for value in losses_seen)
    final_model = None
    if not stopped_on_nan:
        final_model = os.path.join(output_dir, "final.keras")
        with atomic_path(final_model) as temporary:
            model.save(temporary)
        # Only now: a kill before this point resumes from the backup, at the end.
        shutil.rmtree(os.path.join(output_dir, "backup"), ignore_errors=True)
    best_checkpoint = best_mean_iou = None
    best_record = os.path.join(output_dir, "best.json")
    if os.path.exists(best_record):
        best_checkpoint = os.path.join(output_dir, "best.keras")
        with open(best_record) as f:
            best_mean_iou = float(json.load(f)["value"])
    if not is_chief():
        # Other workers only write to take part in collective saves.
        for name in ("best.keras", "final.keras", "logs"):
            path = os.path.join(output_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    return TrainResult(
        model=model,
        history=dict(history.history),
        config=config,
        output_dir=output_dir,
        best_checkpoint=best_checkpoint,
        best_mean_iou=best_mean_iou,
        final_model=final_model,
        stopped_on_nan=stopped_on_nan,
        skipped={
            split.split: split.skipped for split in (train_split, val_split) if split is not None
        },
    )
