"""Callbacks of `danet_keras.train`: crash-safe backups, best-mIoU checkpoint, exact resume.

Keras' `BackupAndRestore` restores the weights, the optimizer state (so the
step counter and the learning-rate schedule continue) and the epoch, but
re-runs the interrupted epoch from its first batch. `AlignEpochsToSteps` ends
that epoch once the optimizer has made the epoch's steps, so a resumed run
makes exactly the planned number of steps. `SafeBackupAndRestore` writes each
backup whole before publishing it (a kill mid-backup leaves the previous one),
never backs up weights after a non-finite loss, and keeps the last good backup
when `TerminateOnNaN` stops the run. `BestCheckpoint` keeps the model with the
best validation mIoU, remembers that score across restarts and writes both
atomically. `HistoryCSV` keeps the per-epoch log, rewritten whole each epoch.
"""

import csv
import io
import json
import math
import os
import shutil
import time
import uuid

import keras
import numpy as np

from danet_keras.training.config import validated_epochs
from danet_keras.utils.atomic_io import (
    atomic_directory,
    atomic_path,
    remove_partials,
    write_json,
    write_text,
)

# The published backup: {"state": "<directory name>"}, replaced atomically.
BACKUP_POINTER = "current.json"


def optimizer_steps(model):
    """The optimizer steps `model` has made (they survive a restore from a backup)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _finite_loss(logs):
    """False when `logs` holds a NaN or infinite loss."""
    if not logs or "loss" not in logs:
        return True
    return bool(np.all(np.isfinite(np.asarray(logs["loss"], dtype="float64"))))


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backups survive a kill at any point, and never follow a NaN.

    Keras writes the weights and the epoch record of a backup in place, one
    after the other: a kill in between leaves weights and epoch that disagree,
    and a kill mid-write a truncated weights file that stops the restart. Here
    each backup goes whole into its own directory (`state-<id>`), which is
    then published by atomically replacing the pointer `current.json`; a kill
    at any moment leaves the previous published backup intact, and the next
    start clears the unpublished leftovers.

    A backup is also written at every epoch's end, after the epoch's
    validation, checkpoint and log (this callback comes after them), and a
    backup due at an epoch's last step waits for it: a run resumed from an
    epoch boundary starts the next epoch, never re-runs a step, and never
    misses an epoch's validation.

    The backup is not deleted when training ends (`delete_checkpoint=False`):
    `danet_keras.train` removes it once the final model is saved, so a kill in
    between resumes at the end instead of starting over.

    Args:
        backup_dir: directory of the backup (one per worker).
        save_freq: `"epoch"` or a number of steps.
        **kwargs: `keras.callbacks.BackupAndRestore` arguments.
    """

    def __init__(self, backup_dir, save_freq="epoch", **kwargs):
        kwargs.setdefault("delete_checkpoint", False)
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.saw_non_finite_loss = False
        self._at_epoch_end = False
        self._use_state(self.published_state())

    def published_state(self):
        """The directory name of the published backup, or None."""
        pointer = os.path.join(self.backup_dir, BACKUP_POINTER)
        if not os.path.exists(pointer):
            return None
        with open(pointer) as f:
            return json.load(f)["state"]

    def _use_state(self, state):
        directory = os.path.join(self.backup_dir, state or "no-backup")
        self._weights_path = os.path.join(directory, "latest.weights.h5")
        self._training_metadata_path = os.path.join(directory, "training_metadata.json")

    def _remove_unpublished(self, keep):
        for name in os.listdir(self.backup_dir):
            if name.startswith("state-") and name != keep:
                shutil.rmtree(os.path.join(self.backup_dir, name), ignore_errors=True)

    def on_train_begin(self, logs=None):
        if os.path.isdir(self.backup_dir):
            remove_partials(self.backup_dir)
            self._remove_unpublished(keep=self.published_state())
        self._use_state(self.published_state())
        super().on_train_begin(logs)

    def _save_model(self):
        if self._at_epoch_end:
            return  # on_epoch_end saves, after the epoch's validation and checkpoint
        state = f"state-{uuid.uuid4().hex[:12]}"
        with atomic_directory(os.path.join(self.backup_dir, state)) as staging:
            self.model.save_weights(os.path.join(staging, "latest.weights.h5"), overwrite=True)
            record = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            write_json(os.path.join(staging, "training_metadata.json"), record)
        # The backup exists whole; publishing it is one rename.
        write_json(os.path.join(self.backup_dir, BACKUP_POINTER), {"state": state})
        self._use_state(state)
        self._remove_unpublished(keep=state)

    def on_train_batch_end(self, batch, logs=None):
        if not _finite_loss(logs):
            self.saw_non_finite_loss = True
        if not self.saw_non_finite_loss:
            steps = self.params.get("steps") if self.params else None
            done = optimizer_steps(self.model)
            self._at_epoch_end = bool(steps) and done % int(steps) == 0
            super().on_train_batch_end(batch, logs)
            self._at_epoch_end = False

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_loss(logs):
            self.saw_non_finite_loss = True
        if not self.saw_non_finite_loss:
            self._current_epoch = epoch + 1
            self._last_batch_seen = 0
            self._save_model()

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
        steps_done = optimizer_steps(self.model)
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
        with atomic_path(self.filepath) as temporary:
            self.model.save(temporary, overwrite=True)
        # A kill between the two renames leaves a better model than the record
        # says: the next improvement replaces both; never the reverse.
        write_json(self.record_path, {"epoch": epoch + 1, "monitor": self.monitor, "value": value})
        if self.verbose:
            print(
                f"\nEpoch {epoch + 1}: {self.monitor} improved to {value:.4f}; "
                f"saved {self.filepath}"
            )


class HistoryCSV(keras.callbacks.Callback):
    """The per-epoch log as CSV (epoch, then the logs' keys), rewritten whole after each epoch.

    Keras' `CSVLogger` appends to an open file, so a kill mid-write leaves a
    partial line. This keeps the rows and replaces the file atomically; with
    `append=True` (a resumed run) it starts from the rows already there,
    dropping those of epochs that the resumed run will redo.

    Args:
        filepath: the CSV file.
        append: continue an existing file.
    """

    def __init__(self, filepath, append=False):
        super().__init__()
        self.filepath = filepath
        self.rows = []
        if append and os.path.exists(filepath):
            with open(filepath, newline="") as f:
                self.rows = list(csv.DictReader(f))

    def on_train_begin(self, logs=None):
        self._first_epoch_seen = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch_seen:
            # Rows of the epochs this (resumed) run does again are replaced.
            self.rows = [row for row in self.rows if int(row["epoch"]) < epoch]
            self._first_epoch_seen = True

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch)}
        for key, value in sorted((logs or {}).items()):
            value = np.asarray(value)
            row[key] = repr(float(value)) if value.size == 1 else str(value.tolist())
        self.rows.append(row)
        fields = ["epoch"] + sorted({key for row in self.rows for key in row} - {"epoch"})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.filepath, buffer.getvalue())


def format_duration(seconds):
    """`"7 min 36 s"`, `"42 s"` or `"1 h 05 min"`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class TimeEstimate(keras.callbacks.Callback):
    """Prints how long the run will take, from its first steps on this machine.

    The first `warmup_steps` steps trace the step and set up the kernels, so
    they are not timed; the next `timed_steps` are, and their median times
    the steps left. The pause between two epochs (validation, checkpoints,
    backups) is timed too, once after a validated epoch and once after
    another, and counted for the epochs left. `after_training(step_seconds,
    validation_seconds)` may add what the caller does after `fit` (e.g. the
    demo's evaluation and export, in units of the same work).

    The run's length comes from `model.fit`'s `epochs` and `steps_per_epoch`.

    Args:
        validation_freq: validate every this many epochs and the last
            (`validated_epochs`); 0: never.
        warmup_steps: untimed first steps.
        timed_steps: steps whose median sets the estimate.
        after_training: optional `f(step_seconds, validation_seconds) -> seconds`;
            `validation_seconds` (the pause after a validated epoch) is None
            until one has been timed.
        start_time: optional `time.perf_counter()` of the whole job's start:
            the lines then give the job's expected total time too.
        label: what the printed lines start with.
    """

    def __init__(
        self,
        validation_freq=1,
        warmup_steps=3,
        timed_steps=5,
        after_training=None,
        start_time=None,
        label="[time]",
    ):
        super().__init__()
        self.validation_freq = int(validation_freq)
        self.warmup_steps = int(warmup_steps)
        self.timed_steps = int(timed_steps)
        self.after_training = after_training
        self.start_time = start_time
        self.label = label
        self.step_seconds = None
        self.validation_seconds = None  # the pause after a validated epoch
        self.pause_seconds = None  # ... after one without validation
        self._ends = []
        self._epoch = 0
        self._validated = False
        self._last_batch_end = None

    def _remaining(self):
        steps_per_epoch, epochs = self.params["steps"], self.params["epochs"]
        seconds = max(0, epochs * steps_per_epoch - optimizer_steps(self.model)) * self.step_seconds
        # The pauses after this epoch and the ones left (1-based epochs in `validated`).
        validated = ()
        if self.validation_freq:
            validated = set(validated_epochs(epochs, self.validation_freq))
        for epoch in range(self._epoch, epochs):
            pause = self.validation_seconds if epoch + 1 in validated else self.pause_seconds
            seconds += pause or 0.0
        if self.after_training is not None:
            seconds += self.after_training(self.step_seconds, self.validation_seconds)
        return seconds

    def _report(self, what):
        import datetime  # the wall clock only for the printed time of day

        remaining = self._remaining()
        done_at = datetime.datetime.now() + datetime.timedelta(seconds=remaining)
        total = ""
        if self.start_time is not None:
            elapsed = time.perf_counter() - self.start_time
            total = f" ({format_duration(elapsed + remaining)} in all)"
        print(
            f"{self.label} {what}: about {format_duration(remaining)} to go, "
            f"done around {done_at:%H:%M}{total} on this machine.",
            flush=True,
        )

    def on_epoch_begin(self, epoch, logs=None):
        pause = None if self._last_batch_end is None else time.perf_counter() - self._last_batch_end
        validated, self._validated = self._validated, False
        self._epoch = epoch
        self._ends.clear()  # a pause between epochs is not a step
        if pause is None:
            return
        if not validated:
            self.pause_seconds = self.pause_seconds or pause
        elif self.validation_seconds is None:
            self.validation_seconds = pause
            if self.step_seconds is not None:
                self._report(f"{pause:.1f} s between epochs with a validation")

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = time.perf_counter()
        if self.step_seconds is not None:
            return
        self._ends.append(self._last_batch_end)
        if len(self._ends) == self.warmup_steps + self.timed_steps + 1:
            self.step_seconds = float(np.median(np.diff(self._ends[self.warmup_steps :])))
            self._report(f"{self.step_seconds:.2f} s per training step")

    def on_test_begin(self, logs=None):
        self._validated = True
