import csv
import json
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.data import make_demo_city
from danet_keras.training.trainer import train

from ..data.test_damaged import CLASSES
from ..data.test_damaged import damaged as damaged  # a fixture


def published_backup_record(backup_dir):
    """The epoch record of the backup that `backup_dir/current.json` publishes."""
    state = json.loads((backup_dir / "current.json").read_text())["state"]
    return json.loads((backup_dir / state / "training_metadata.json").read_text())


TINY_SETTINGS = {"tensorboard": False, "verbose": 0}
TINY = {"model": {"backbone": "resnet18", "head_channels": 16}, **TINY_SETTINGS}


def learnable_batches(count, batch_size=2, size=32, seed=0, nan_after=None):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (count * batch_size, size, size, 3)).astype(np.float32)
    labels = (images[..., 0] > 127).astype(np.int32)
    if nan_after is not None:
        images[nan_after * batch_size :] = np.nan
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


RESUMABLE_RUN = """
import json, os, signal
import keras
from danet_keras.training.trainer import train

KILL_AT_STEP = int(sys.argv[1])

class Probe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print(json.dumps({"start_step": int(self.model.optimizer.iterations.numpy())}), flush=True)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)

result = train(
    dict(dataset="custom", num_classes=3, model={"backbone": "resnet18", "head_channels": 16},
         strategy="one_device", epochs=3, steps_per_epoch=4, batch_size=2, backup_freq=3,
         validation=False, tensorboard=False, verbose=0, output_dir=OUTPUT_DIR),
    train_data=synthetic_segmentation(8, batch_size=2),
    callbacks=[Probe()],
)
print(json.dumps({"end_step": int(result.model.optimizer.iterations.numpy()),
                  "final_model": result.final_model}), flush=True)
"""


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_from_the_last_backup(
    start_python, synthetic_data_code, tmp_path
):
    code = (
        synthetic_data_code + f"OUTPUT_DIR = {str(tmp_path)!r}\n" + textwrap.dedent(RESUMABLE_RUN)
    )

    def run(kill_at_step):
        process = start_python(code.replace("int(sys.argv[1])", str(kill_at_step)))
        output, _ = process.communicate(timeout=300)
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        return process.returncode, records, output

    # Backups every 3 steps (steps 3 and 6); SIGKILL at step 7, in the middle of epoch 2.
    returncode, records, output = run(7)
    assert returncode == -9, output[-3000:]
    assert records == [{"start_step": 0}]
    metadata = published_backup_record(tmp_path / "backup")
    assert metadata["epoch"] == 1

    returncode, records, output = run(-1)
    assert returncode == 0, output[-3000:]
    assert records[0] == {"start_step": 6}, output[-3000:]  # the last backup, not step 0
    assert records[1]["end_step"] == 12  # exactly 3 epochs of 4 steps in all
    assert records[1]["final_model"] and not (tmp_path / "backup").exists()
    with open(tmp_path / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2]


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # Epoch 1 is finite, epoch 2 feeds NaN images.
    result = train(
        dict(
            dataset="custom",
            num_classes=2,
            strategy="one_device",
            epochs=3,
            steps_per_epoch=2,
            batch_size=2,
            output_dir=str(tmp_path),
            **TINY,
        ),
        train_data=learnable_batches(4, nan_after=2),
        val_data=learnable_batches(1, seed=1),
    )
    assert result.stopped_on_nan and result.final_model is None
    assert not (tmp_path / "final.keras").exists()
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 1
    best = keras.saving.load_model(tmp_path / "best.keras", compile=False)
    assert all(np.all(np.isfinite(v.numpy())) for v in best.weights)
    # The backup of the last good epoch is kept for inspection or a resumed run.
    metadata = published_backup_record(tmp_path / "backup")
    assert metadata["epoch"] == 1


def test_custom_labels_that_disagree_with_num_classes(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        train(
            dict(
                dataset="custom",
                num_classes=1,
                strategy="one_device",
                batch_size=2,
                output_dir=str(tmp_path),
                **TINY,
            ),
            train_data=learnable_batches(2),
        )


def test_dataset_num_classes_mismatch_and_missing_images(tmp_path):
    make_demo_city(tmp_path / "city", num_train=2, num_val=1, size=(32, 64))
    with pytest.raises(ValueError, match="num_classes"):
        train(
            dict(
                dataset="demo_city",
                data_dir=str(tmp_path / "city"),
                num_classes=5,
                batch_size=2,
                strategy="one_device",
                output_dir=str(tmp_path / "run"),
                **TINY,
            )
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises((FileNotFoundError, ValueError), match="empty|image|found|No "):
        train(
            dict(
                dataset="cityscapes",
                data_dir=str(tmp_path / "empty"),
                strategy="one_device",
                output_dir=str(tmp_path / "run"),
                **TINY,
            )
        )


def test_settings_are_checked_before_tensorflow_work(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        train(dict(dataset="cityscapes", **TINY))
    with pytest.raises(ValueError, match="train_data"):
        train(dict(dataset="custom", **TINY))
    with pytest.raises(ValueError, match="Unknown preset 'danet_vgg'"):
        train(dict(dataset="custom", preset="danet_vgg", **TINY))
    # Model arguments are checked once, by the model, before anything is written.
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="`backbone` must be a DilatedResNet or one of"):
        train(
            dict(
                dataset="custom",
                num_classes=2,
                model={"backbone": "vgg16"},
                output_dir=str(output_dir),
                **TINY_SETTINGS,
            ),
            train_data=learnable_batches(1),
        )
    assert not output_dir.exists()


def test_cli_reports_bad_settings_as_one_line(capsys):
    from danet_keras.cli.main import main

    # argparse refuses a name that is not in the dataset registry, in one line too.
    assert main(["train", "--dataset", "kitti", "--data-dir", "/nowhere"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'kitti'" in err and len(err.strip().splitlines()) == 1
    assert (
        main(["train", "--dataset", "cityscapes", "--data-dir", "/nowhere", "--loss-weight", "aux"])
        == 2
    )
    assert "OUTPUT=WEIGHT" in capsys.readouterr().err
    assert main(["train", "--strategy", "horovod"]) == 2
    # --class-names is for a dataset whose classes its user names; a square crop.
    assert main(["train", "--dataset", "cityscapes", "--class-names", "a,b"]) == 2
    assert "--class-names is for a dataset whose classes you name" in capsys.readouterr().err
    assert main(["train", "--dataset", "demo_city", "--crop-size", "64x128"]) == 2
    assert "training crops are square" in capsys.readouterr().err


def test_class_names_reach_the_folder_reader(tmp_path):
    from danet_keras.cli.main import build_parser
    from danet_keras.cli.train import config_from_args

    names = tmp_path / "classes.txt"
    names.write_text("background\nroad\n\ncar\n")
    for given in (str(names), "background,road,car"):
        arguments = ["train", "--dataset", "folder", "--data-dir", "d", "--class-names", given]
        fields = config_from_args(build_parser().parse_args(arguments + ["--crop-size", "64"]))
        assert fields["reader_options"] == {"class_names": ("background", "road", "car")}
        assert fields["crop_size"] == 64


def test_cli_flags_map_to_config_fields():
    from danet_keras.cli.main import build_parser
    from danet_keras.cli.train import config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--dataset",
            "ade20k",
            "--data-dir",
            "/d",
            "--backbone",
            "resnet101",
            "--aux-head",
            "--multi-grid",
            "4",
            "8",
            "16",
            "--loss-weight",
            "aux_logits=0.2",
            "--class-weights",
            "1,2",
            "--backup-freq",
            "100",
            "--no-sync-batchnorm",
            "--mixed-precision",
            "--remat",
            "--strategy",
            "mirrored",
        ]
    )
    fields = config_from_args(args)
    assert fields["model"] == {"aux_head": True, "multi_grid": [4, 8, 16], "backbone": "resnet101"}
    assert fields["loss_weights"] == {"aux_logits": 0.2}
    assert fields["class_weights"] == [1.0, 2.0]
    assert (
        fields["backup_freq"] == 100
        and fields["sync_batchnorm"] is False
        and fields["mixed_precision"]
        and fields["remat"] is True
    )
    assert fields["strategy"] == "mirrored"
    assert "crop_size" not in fields  # left to the dataset preset


def test_single_output_model_still_keeps_its_best_checkpoint(tmp_path):
    options = dict(
        TINY, model={"backbone": "resnet18", "head_channels": 16, "attention": ("position",)}
    )
    result = train(
        dict(
            dataset="custom",
            num_classes=2,
            strategy="one_device",
            epochs=1,
            batch_size=2,
            output_dir=str(tmp_path),
            **options,
        ),
        train_data=learnable_batches(2),
        val_data=learnable_batches(1, seed=1),
    )
    assert "val_mean_iou" in result.history
    assert result.best_checkpoint and result.best_mean_iou == pytest.approx(
        result.history["val_mean_iou"][0]
    )


@pytest.mark.slow
def test_cli_training_on_damaged_data_skips_and_reports(damaged, tmp_path, capsys):  # noqa: F811
    from danet_keras.cli.main import main

    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps({"reader_options": {"class_names": CLASSES}, "train_split": None, **TINY})
    )
    arguments = ["train", "--config", str(settings), "--dataset", "folder"]
    arguments += ["--data-dir", damaged.root, "--output", str(tmp_path / "run")]
    arguments += ["--epochs", "2", "--batch-size", "4", "--crop-size", "16", "--no-validation"]
    # Strict by default: the first bad file stops the run before training, named.
    assert main(arguments) == 2
    assert "invalid example" in capsys.readouterr().err
    assert main(arguments + ["--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "folder: 44 example(s) skipped" in out, out
    assert "final model:" in out


def test_a_run_from_random_weights_says_so_first(tmp_path, capsys):
    from danet_keras.training.trainer import RANDOM_START_WARNING

    settings = dict(
        dataset="custom", num_classes=2, strategy="one_device", epochs=1, validation=False
    )
    train(
        dict(settings, batch_size=2, output_dir=str(tmp_path / "random"), **TINY),
        train_data=learnable_batches(1),
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0] == RANDOM_START_WARNING
    assert "--backbone-weights imagenet" in RANDOM_START_WARNING and "--preset" in out
    # A preset directory's weights are a pretrained start: no warning.
    preset = keras.saving.load_model(tmp_path / "random" / "final.keras").save_to_preset(
        str(tmp_path / "preset")
    )
    train(
        dict(settings, batch_size=2, preset=preset, output_dir=str(tmp_path / "tuned"), **TINY),
        train_data=learnable_batches(1),
    )
    assert RANDOM_START_WARNING not in capsys.readouterr().out


@pytest.mark.slow
def test_cli_fine_tunes_a_preset_to_the_datasets_classes(tmp_path, capsys):
    from danet_keras import DANet
    from danet_keras.cli.main import main

    # A 4-class model (the stand-in of a published preset) trained on the demo city's 19.
    small = DANet(4, backbone="resnet18", head_channels=16, output_stride=16)
    preset = small.save_to_preset(str(tmp_path / "preset"))
    make_demo_city(tmp_path / "city", num_train=2, num_val=1, size=(32, 64))
    arguments = ["train", "--preset", preset, "--num-classes", "19", "--dataset", "demo_city"]
    arguments += ["--data-dir", str(tmp_path / "city"), "--output-dir", str(tmp_path / "run")]
    arguments += ["--epochs", "1", "--batch-size", "2", "--crop-size", "32", "--no-validation"]
    arguments += ["--no-tensorboard"]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "random weights" not in out and "final model:" in out
    tuned = keras.saving.load_model(tmp_path / "run" / "final.keras", compile=False)
    assert tuned.num_classes == 19 and tuned.class_names[0] == "road"
    assert tuned.get_layer("fused_classifier").kernel.shape[-1] == 19
