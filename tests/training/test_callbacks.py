"""Crash safety: training killed with SIGKILL at many points, mid-step and mid-write."""

import csv
import json
import os
import textwrap

import keras
import pytest

from danet_keras.utils.atomic_io import is_partial
from danet_keras.utils.output_paths import MARKER

# A run of 3 epochs x 4 steps, backups every 3 steps and at each epoch's end, validated
# each epoch. KILL says where the process SIGKILLs itself: "step:N" after optimizer step N,
# or "write:NAME:K" during the K-th atomic write of a file named NAME ("backup": a backup's
# state directory): the temporary copy is cut to half its size first, as a kill in the middle
# of writing it would leave it, and the rename never happens; or "rmtree:state:K" during the
# K-th removal of a replaced backup (the rotation, after the next one was published): half of
# it is gone.
CRASHING_RUN = """
import json, os, shutil, signal
import keras
from danet_keras.training.trainer import train

KILL = KILL_SPEC

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if KILL.startswith("write:"):
    _, target, nth = KILL.split(":")
    seen = [0]
    real_replace = os.replace

    def cut(path):
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for name in files:
                    cut(os.path.join(root, name))
        else:
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)

    def replace(source, destination):
        name = os.path.basename(str(destination))
        hit = name.startswith("state-") if target == "backup" else name == target
        if hit and ".partial" in os.path.basename(str(source)):
            seen[0] += 1
            if seen[0] == int(nth):
                cut(source)
                die()
        return real_replace(source, destination)

    os.replace = replace

if KILL.startswith("rmtree:"):
    _, target, nth = KILL.split(":")
    seen = [0]
    real_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if os.path.basename(str(path)).startswith(target + "-"):
            seen[0] += 1
            if seen[0] == int(nth):
                os.remove(os.path.join(path, "latest.weights.h5"))
                die()
        return real_rmtree(path, *args, **kwargs)

    shutil.rmtree = rmtree

class Probe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        print(json.dumps({"start_step": step}), flush=True)

    def on_train_batch_end(self, batch, logs=None):
        if KILL == f"step:{int(self.model.optimizer.iterations.numpy())}":
            die()

result = train(
    dict(dataset="custom", num_classes=3, model={"backbone": "resnet18", "head_channels": 16},
         strategy="one_device", epochs=3, steps_per_epoch=4, batch_size=2, backup_freq=3,
         tensorboard=False, verbose=0, output_dir=OUTPUT_DIR),
    train_data=synthetic_segmentation(8, batch_size=2),
    val_data=synthetic_segmentation(2, seed=9, batch_size=2),
    callbacks=[Probe()],
)
print(json.dumps({"end_step": int(result.model.optimizer.iterations.numpy()),
                  "final_model": result.final_model}), flush=True)
"""

# Where each run of the chain is killed, and the step it starts from: every run resumes what
# the previous ones left (None: killed before training began).
KILL_POINTS = (
    ("write:config.json:1", None),  # at the start
    ("write:current.json:1", 0),  # publishing the first backup (step 3): unpublished
    ("write:backup:2", 0),  # writing the epoch-end backup after step 4
    ("rmtree:state:2", 3),  # removing the step-4 backup, once the step-6 one is published
    ("step:7", 6),  # mid-epoch, after the step-6 backup
    ("write:best.keras:1", 6),  # the best checkpoint, after epoch 2's validation (step 8)
    ("write:history.csv:2", 6),  # the log at epoch 3's end, after the step-9 backup
    ("write:final.keras:1", 9),  # the final model, after the epoch-3 backup (step 12)
)


def partial_files(directory):
    return [
        os.path.join(root, name)
        for root, dirs, files in os.walk(directory)
        for name in dirs + files
        if is_partial(name)
    ]


@pytest.mark.slow
def test_training_killed_at_every_point_resumes_from_the_last_complete_state(
    start_python, synthetic_data_code, tmp_path
):
    output_dir = tmp_path / "run"
    code = (
        synthetic_data_code + f"OUTPUT_DIR = {str(output_dir)!r}\n" + textwrap.dedent(CRASHING_RUN)
    )

    def run(kill):
        process = start_python(code.replace("KILL_SPEC", repr(kill)))
        output, _ = process.communicate(timeout=300)
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        return process.returncode, records, output

    for kill, start in KILL_POINTS:
        returncode, records, output = run(kill)
        assert returncode == -9, f"{kill}: not killed\n{output[-3000:]}"
        # It started where the last complete backup was.
        assert (records[0]["start_step"] if records else None) == start, (kill, records)
    returncode, records, output = run("none")
    assert returncode == 0, output[-3000:]
    assert records[0] == {"start_step": 12}  # the run had finished; only final.keras was lost
    assert records[1]["end_step"] == 12  # exactly 3 epochs of 4 steps in all

    # Nothing partial or corrupt is left: every file is whole and loads.
    assert partial_files(output_dir) == []
    assert sorted(os.listdir(output_dir)) == [
        MARKER, "best.json", "best.keras", "config.json", "final.keras", "history.csv",
    ]  # fmt: skip
    for name in ("best.keras", "final.keras"):
        keras.saving.load_model(output_dir / name, compile=False)
    json.loads((output_dir / "config.json").read_text())
    assert json.loads((output_dir / "best.json").read_text())["epoch"] in (2, 3)
    with open(output_dir / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2]


def test_the_backup_rotation_deletes_the_old_backup_only_once_the_new_one_is_durable(
    tmp_path, monkeypatch
):
    import shutil

    from danet_keras.training.callbacks import BACKUP_POINTER, SafeBackupAndRestore

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    backup = SafeBackupAndRestore(str(tmp_path))
    backup.set_model(model)
    backup._current_epoch, backup._last_batch_seen = 1, 0
    backup._save_model()
    (old,) = [name for name in os.listdir(tmp_path) if name.startswith("state-")]

    events = []
    names = {}
    real_open, real_fsync, real_replace, real_rmtree = os.open, os.fsync, os.replace, shutil.rmtree

    def tracked_open(path, flags, *args, **kwargs):
        descriptor = real_open(path, flags, *args, **kwargs)
        names[descriptor] = os.path.abspath(path)
        return descriptor

    monkeypatch.setattr(os, "open", tracked_open)
    monkeypatch.setattr(
        os, "fsync", lambda fd: events.append(("fsync", names[fd])) or real_fsync(fd)
    )
    monkeypatch.setattr(
        os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b)
    )
    monkeypatch.setattr(
        shutil, "rmtree", lambda p, **k: events.append(("rmtree", str(p))) or real_rmtree(p, **k)
    )
    backup._current_epoch = 2
    backup._save_model()
    (new,) = [name for name in os.listdir(tmp_path) if name.startswith("state-")]
    assert new != old
    order = {event: index for index, event in enumerate(events)}
    removal = order[("rmtree", str(tmp_path / old))]
    published = order[("replace", str(tmp_path / BACKUP_POINTER))]
    # The new backup is on the disk (flushed while staged), and published durably, before the
    # old one goes.
    flushed = [i for i, e in enumerate(events) if e[0] == "fsync" and e[1].endswith(".weights.h5")]
    assert flushed[0] < order[("replace", str(tmp_path / new))] < published < removal
    assert ("fsync", str(tmp_path)) in events[published:removal]


def test_durations_read_as_a_person_says_them():
    from danet_keras.training.callbacks import format_duration

    assert format_duration(42.4) == "42 s"
    assert format_duration(456) == "7 min 36 s"
    assert format_duration(3600 + 5 * 60 + 9) == "1 h 05 min"


def test_time_estimate_reports_after_the_first_steps_and_the_first_validation(capsys):
    import numpy as np

    from danet_keras.training import TimeEstimate

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    data = np.zeros((16, 4), "float32"), np.zeros((16, 2), "float32")
    after = []
    estimate = TimeEstimate(
        validation_freq=1,
        warmup_steps=1,
        timed_steps=2,
        after_training=lambda step, validation: after.append((step, validation)) or 3600,
    )
    model.fit(*data, batch_size=2, epochs=2, validation_data=data, verbose=0, callbacks=[estimate])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert "s per training step: about 1 h 00 min to go, done around" in lines[0]
    assert "s between epochs with a validation: about " in lines[1]
    assert estimate.step_seconds > 0 and estimate.validation_seconds > 0
    assert after[0] == (estimate.step_seconds, None)
    assert after[1] == (estimate.step_seconds, estimate.validation_seconds)
