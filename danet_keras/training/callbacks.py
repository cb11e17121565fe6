"""Callbacks of `danet_keras.train`: NaN-safe backups, best-mIoU checkpoint, exact resume.

Keras' `BackupAndRestore` restores the weights, the optimizer state (so the
step counter and the learning-rate schedule continue) and the epoch, but
re-runs the interrupted epoch from its first batch. `AlignEpochsToSteps` ends
that epoch once the optimizer has made the epoch's steps, so a resumed run
makes exactly the planned number of steps. `SafeBackupAndRestore` never backs
up weights after a non-finite loss and keeps the last good backup when
`TerminateOnNaN` stops the run. `BestCheckpoint` keeps the model with the best
validation mIoU and remembers that score across restarts.
"""

import json
import math
import os

import keras
import numpy as np


def _finite_loss(logs):
    """False when `logs` holds a NaN or infinite loss."""
    if not logs or "loss" not in logs:
        return True
    return bool(np.all(np.isfinite(np.asarray(logs["loss"], dtype="float64"))))


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that never saves weights produced by a NaN loss.

    Args:
        backup_dir: directory of the backup (one per worker).
        save_freq: `"epoch"` or a number of steps.
        **kwargs: `keras.callbacks.BackupAndRestore` arguments.
    """

    def __init__(self, backup_dir, save_freq="epoch", **kwargs):
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.saw_non_finite_loss = False

    def on_train_batch_end(self, batch, logs=None):
        if not _finite_loss(logs):
            self.saw_non_finite_loss = True
        if not self.saw_non_finite_loss:
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_loss(logs):
            self.saw_non_finite_loss = True
        if not self.saw_non_finite_loss:
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        # After a NaN the backup is the last good state: keep it.
        if not self.saw_non_finite_loss:
            super().on_train_end(logs)


class AlignEpochsToSteps(keras.callbacks.Callback):
    """Ends an epoch once the optimizer has made `(epoch + 1) * steps_per_epoch` steps.

    Only the epoch resumed from a mid-epoch backup is affected: it starts with
    the steps done before the interruption already counted. Put this callback
    last, so that it can tell its own stop from one another callback asked for
    (e.g. `TerminateOnNaN`).

    Args:
        steps_per_epoch: optimizer steps per epoch.
    """

    def __init__(self, steps_per_epoch):
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)
        self._epoch = 0
        self._stopped_epoch_early = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._stopped_epoch_early = False

    def on_train_batch_end(self, batch, logs=None):
        if self.model.stop_training:
            return
        steps_done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if steps_done >= (self._epoch + 1) * self.steps_per_epoch:
            self.model.stop_training = True
            self._stopped_epoch_early = True

    def on_epoch_end(self, epoch, logs=None):
        if self._stopped_epoch_early:
            self.model.stop_training = False


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model when the monitored validation score improves.

    The best score is kept in a JSON record next to the model, so a resumed
    run only replaces the checkpoint with a better one. Epochs with a
    non-finite training loss never replace it.

    Args:
        filepath: `.keras` file of the best model.
        monitor: key of the epoch logs to maximise, e.g.
            `"val_logits_mean_iou"`.
        record_path: JSON file with the best epoch and score.
        verbose: print a line when saving.
    """

    def __init__(self, filepath, monitor, record_path, verbose=1):
        super().__init__()
        self.filepath = filepath
        self.monitor = monitor
        self.record_path = record_path
        self.verbose = verbose
        self.best = -math.inf
        if os.path.exists(record_path):
            with open(record_path) as f:
                self.best = float(json.load(f)["value"])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs or not _finite_loss(logs):
            return
        value = float(np.asarray(logs[self.monitor]))
        if not math.isfinite(value) or value <= self.best:
            return
        self.best = value
        os.makedirs(os.path.dirname(os.path.abspath(self.filepath)), exist_ok=True)
        self.model.save(self.filepath, overwrite=True)
        with open(self.record_path, "w") as f:
            json.dump({"epoch": epoch + 1, "monitor": self.monitor, "value": value}, f)
        if self.verbose:
            print(
                f"\nEpoch {epoch + 1}: {self.monitor} improved to {value:.4f}; "
                f"saved {self.filepath}"
            )
