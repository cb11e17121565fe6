"""`danet-keras demo`: the whole workflow on a CPU in minutes, offline.

    result = danet_keras.apps.demo.run_demo("danet_demo")

1. writes the synthetic demo city (`danet_keras.data.make_demo_city`) unless
   it is already there;
2. trains a small DANet (ResNet-18) on it with `danet_keras.train` (the
   recipe's losses, optimizer, schedule and callbacks);
3. evaluates the best checkpoint on the validation city (per-class table,
   JSON, CSV, confusion matrix);
4. writes prediction overlays (titled, with a class legend), the position-
   and channel-attention figures of a validation image, and the training
   curves;
5. exports a SavedModel (`export/danet/1`, a version folder for TF Serving)
   and a TFLite model and checks the TFLite model against the Keras model;
6. prints where everything is.

`quick=True` shrinks every step (tiny images, a few training steps) to test
the workflow end to end, e.g. in CI; its mIoU means nothing.

The demo owns its output folder (`danet_keras.utils.output_paths.own_folder`): it
takes a new or empty folder, or one that an earlier demo wrote (and redoes
the demo there, replacing its own files); a folder holding anything else, or
the current folder, is refused before anything is written.
"""

import dataclasses
import os
import time

import numpy as np

from danet_keras import export as export_lib
from danet_keras import visualize  # figures looked up when drawn (tests record them)
from danet_keras.apps.evaluation import evaluate
from danet_keras.data.classes import class_names_and_palette
from danet_keras.data.datasets import load_dataset
from danet_keras.data.demo_city import make_demo_city
from danet_keras.data.pipeline import eval_pipeline
from danet_keras.inference.attention_maps import class_points
from danet_keras.inference.strategies import logits_function
from danet_keras.models.loading import load_keras_model
from danet_keras.training.callbacks import TimeEstimate
from danet_keras.training.config import recipe_fields, resolve_config
from danet_keras.training.trainer import train
from danet_keras.utils.atomic_io import write_json
from danet_keras.utils.output_paths import own_folder

DEMO_KIND = "demo"

# The demo city the demo writes; its training is the `demo_city` entry's recipe of the dataset
# registry (`danet-keras train --dataset demo_city` trains the same).
DEMO_SETTINGS = {"image_size": (128, 256), "num_train": 200, "num_val": 40, "num_overlays": 6}
# A smoke test of every step: a smaller city, and the recipe shrunk to two training steps.
QUICK_SETTINGS = {"image_size": (64, 128), "num_train": 8, "num_val": 2, "num_overlays": 2}
QUICK_TRAINING = {"crop_size": 64, "batch_size": 4, "epochs": 1, "steps_per_epoch": 2}
QUICK_MODEL = {"head_channels": 16}


@dataclasses.dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        mean_iou: validation mIoU of the best checkpoint.
        seconds: wall-clock seconds of each stage and in total.
        paths: {what: path} of every output.
        export_note: what the export step did (or why it did not run).
    """

    mean_iou: float
    seconds: dict
    paths: dict
    export_note: str


def _has_demo_city(data_dir):
    return os.path.isdir(os.path.join(data_dir, "leftImg8bit", "train")) and os.path.isdir(
        os.path.join(data_dir, "gtFine", "val")
    )


def demo_training_config(data_dir, quick=False):
    """The demo's training on the demo city at `data_dir`, written first when it is absent.

    The `demo_city` recipe of the dataset registry (the one `danet-keras train
    --dataset demo_city` resolves to), shrunk by `QUICK_TRAINING` for a quick
    run. The example scripts' `--smoke` runs and the ablation train with it too.

    Args:
        data_dir: the demo city's directory.
        quick: the shortened smoke-test setting (`QUICK_SETTINGS`).

    Returns:
        A dict of `TrainConfig` fields (dataset, data, model, crop, batch,
        schedule), to which a caller adds `output_dir` and the like.
    """
    settings = QUICK_SETTINGS if quick else DEMO_SETTINGS
    if not _has_demo_city(data_dir):
        print(f"[demo] writing the demo city to {data_dir} ...", flush=True)
        make_demo_city(data_dir, settings["num_train"], settings["num_val"], settings["image_size"])
    config = dict(recipe_fields("demo_city"), dataset="demo_city", data_dir=data_dir)
    if quick:
        config.update(QUICK_TRAINING, model={**config["model"], **QUICK_MODEL})
    return config


# The classes whose pixels the demo's attention figure looks from, when the image has them.
ATTENTION_CLASSES = ("car", "road", "sky", "building", "person")


def write_overlays(model, dataset, out_dir, count, class_names=None, palette=None):
    """Writes `count` titled figures of [image | ground truth | prediction] with a class legend.

    Args:
        model: a DANet (or callable; see `danet_keras.inference.logits_function`).
        dataset: iterable of (images, labels) batches.
        out_dir: output directory.
        count: number of images.
        class_names, palette: None: the model's own; see
            `danet_keras.visualize.class_names_and_palette`.

    Returns:
        The written paths.
    """
    class_names, palette = class_names_and_palette(None, class_names, palette, model=model)
    os.makedirs(out_dir, exist_ok=True)
    predict = logits_function(model)
    paths = []
    for images, labels in dataset:
        images, labels = np.asarray(images), np.asarray(labels)
        predictions = np.asarray(predict(images)).argmax(-1)
        for image, label, prediction in zip(images, labels, predictions):
            if len(paths) == count:
                return paths
            path = os.path.join(out_dir, f"val_{len(paths):03d}.png")
            figure = visualize.plot_overlays(
                image,
                label,
                prediction,
                class_names,
                palette,
                titles=[f"validation image {len(paths)}"],
            )
            paths.append(visualize.save_figure(figure, path))
    return paths


def write_attention_figures(model, image, label, out_dir, class_names=None, palette=None, dpi=120):
    """The position- and channel-attention figures of one image.

    Writes `position_attention.png` (a point inside each region of the first
    three `ATTENTION_CLASSES` of the ground truth) and `channel_attention.png` (the
    three channels that vary most) to `out_dir`.

    Args:
        model: a DANet with both attentions.
        image: (H, W, 3) in [0, 255].
        label: (H, W) train ids.
        out_dir: output directory.
        class_names, palette: None: the model's own; see
            `danet_keras.visualize.class_names_and_palette`.
        dpi: resolution of the PNGs.

    Returns:
        {"position_attention": path, "channel_attention": path}.
    """
    names, colours = class_names_and_palette(None, class_names, palette, model=model)
    image = np.clip(np.round(np.asarray(image)), 0, 255).astype(np.uint8)
    points = [point for _, point in class_points(label, ATTENTION_CLASSES, names)][:3]
    points = points or [(image.shape[0] // 2, image.shape[1] // 2)]
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "position_attention": os.path.join(out_dir, "position_attention.png"),
        "channel_attention": os.path.join(out_dir, "channel_attention.png"),
    }
    visualize.save_figure(
        visualize.plot_position_attention(model, image, points, names, colours),
        paths["position_attention"],
        dpi,
    )
    visualize.save_figure(
        visualize.plot_channel_attention(model, image, 3, names, colours),
        paths["channel_attention"],
        dpi,
    )
    return paths


# The demo's evaluation, figures and export take about as long as this many training steps
# (`danet-keras demo` on 2 AVX-512 cores: 5 s + 9 s against 0.26 s per step, i.e. 54).
AFTER_TRAINING_STEPS = 60


def _after_training(step_seconds, validation_seconds):
    return AFTER_TRAINING_STEPS * step_seconds


def _export(model, export_dir, image_size, sample_images):
    """SavedModel + TFLite, and the TFLite model's parity with the Keras model."""
    # The demo owns its folder: a second run replaces its own artefacts (never others').
    # Version 1 under the model's base folder, as TF Serving reads it.
    saved_model = export_lib.export_saved_model(
        model, os.path.join(export_dir, "danet", "1"), overwrite=True
    )
    tflite = export_lib.export_tflite(
        model, os.path.join(export_dir, "danet_demo.tflite"), input_size=image_size, overwrite=True
    )
    pixels = np.clip(np.round(sample_images), 0, 255).astype(np.uint8)
    report = export_lib.check_parity(model, tflite, pixels)
    return {
        "saved_model": saved_model,
        "tflite": tflite,
    }, f"TFLite vs Keras on {len(pixels)} val images: {report}"


def run_demo(
    output_dir="danet_demo",
    data_dir=None,
    quick=False,
    export=True,
    verbose="auto",
    **train_overrides,
):
    """Runs the demo (see the module docstring).

    Args:
        output_dir: where everything goes.
        data_dir: the demo city (default `output_dir/demo_city`); generated
            when absent.
        quick: the shortened smoke-test setting.
        export: export SavedModel + TFLite at the end.
        verbose: `model.fit` verbosity; "auto": a progress bar on a
            terminal, one line per epoch otherwise; 0: the demo's own lines.
        **train_overrides: `TrainConfig` fields replacing the demo's, e.g.
            `epochs=5`.

    Returns:
        A `DemoResult`.
    """
    settings = QUICK_SETTINGS if quick else DEMO_SETTINGS
    own_folder(output_dir, DEMO_KIND, "the demo")
    data_dir = data_dir or os.path.join(output_dir, "demo_city")
    seconds, paths = {}, {"output_dir": output_dir, "data": data_dir}
    start = time.perf_counter()

    config = demo_training_config(data_dir, quick)
    seconds["data"] = time.perf_counter() - start

    print("[demo] training a DANet (ResNet-18) ...", flush=True)
    config.update(
        output_dir=os.path.join(output_dir, "training"),
        strategy="one_device",
        tensorboard=not quick,
        verbose=verbose,
    )
    config = resolve_config(config, **train_overrides)
    estimate = TimeEstimate(
        config.validation_freq if config.validation else 0,
        after_training=_after_training,
        start_time=start,
        label="[demo]",
    )
    trained = train(config, callbacks=[estimate])
    seconds["training"] = time.perf_counter() - start - sum(seconds.values())
    if trained.stopped_on_nan:
        raise RuntimeError("the demo training diverged (NaN loss); see " + trained.output_dir)
    paths.update(training=trained.output_dir, best_model=trained.best_checkpoint)

    model = load_keras_model(trained.best_checkpoint)
    val_split = load_dataset("demo_city", data_dir, "val")
    print("[demo] evaluating the best checkpoint on the validation city ...", flush=True)
    evaluation = evaluate(
        model,
        eval_pipeline(val_split, batch_size=4),
        output_dir=os.path.join(output_dir, "evaluation"),
        verbose=bool(verbose),
        overwrite=True,
    )
    paths["evaluation"] = os.path.join(output_dir, "evaluation")
    paths["overlays"] = os.path.join(output_dir, "overlays")
    write_overlays(
        model, eval_pipeline(val_split, batch_size=4), paths["overlays"], settings["num_overlays"]
    )
    first_image, first_label = next(iter(eval_pipeline(val_split, batch_size=1)))
    paths.update(
        write_attention_figures(
            model, first_image[0], first_label[0], os.path.join(output_dir, "attention")
        )
    )
    paths["training_curves"] = os.path.join(output_dir, "training_curves.png")
    visualize.save_figure(
        visualize.plot_training_curves(os.path.join(trained.output_dir, "history.csv")),
        paths["training_curves"],
    )
    seconds["evaluation"] = time.perf_counter() - start - sum(seconds.values())

    export_note = "export not requested"
    if export:
        print("[demo] exporting SavedModel and TFLite ...", flush=True)
        sample = np.concatenate(
            [np.asarray(images) for images, _ in eval_pipeline(val_split, 2).take(1)]
        )
        exported, export_note = _export(
            model, os.path.join(output_dir, "export"), settings["image_size"], sample
        )
        paths.update(exported)
    seconds["export"] = time.perf_counter() - start - sum(seconds.values())
    seconds["total"] = time.perf_counter() - start

    result = DemoResult(evaluation.mean_iou, seconds, paths, export_note)
    write_json(os.path.join(output_dir, "summary.json"), dataclasses.asdict(result))
    print()
    print(
        f"[demo] validation mIoU {100 * result.mean_iou:.1f} (best checkpoint), "
        f"total {seconds['total']:.0f} s"
    )
    print(
        "[demo] "
        + ", ".join(
            f"{stage} {value:.0f} s" for stage, value in seconds.items() if stage != "total"
        )
    )
    print(f"[demo] {export_note}")
    for what, path in paths.items():
        print(f"[demo]   {what:<16} {path}")
    return result
