"""Levers of the demo's training step, side by side on this CPU (issue 24).

Each variant trains the demo's model (the `demo_city` recipe of the dataset
registry: DANet-ResNet18, output stride 16, 19 classes, `compile()`'s paper
recipe) on fixed demo-city scenes for a few steps, in a fresh process of its
own, one variant after the other (never two at once). The table gives the
median time per step and per image, and the time per pixel against the plain
step.

    python benchmarks/training_levers.py [--steps 12] [--variants plain xla ...]

Variants (each changes one thing of `plain`):
    plain        model.fit's step as `danet_keras.train` runs it (no XLA), on fixed tensors
    fit          `danet_keras.train` itself: the step with its input pipeline,
                 augmentation and metric on the demo city (does the step wait for data?)
    fit_cached   `fit` with the decoded city cached (the recipe decodes every PNG each epoch)
    xla          the step compiled with XLA (`compile(jit_compile=True)`)
    batch16      batch 16 (per-image cost of a larger batch)
    crop96       96x96 crops instead of 128x128
    head64       64-channel attention branches instead of C/4 = 128
    bf16         `mixed_bfloat16` (bfloat16 convolutions; fast only where the CPU has BF16)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = {
    "plain": {},
    "fit": {"fit": True},
    "fit_cached": {"fit": True, "data_options": {"cache": True}},
    "xla": {"jit_compile": True},
    "batch16": {"batch": 16},
    "crop96": {"crop": 96},
    "head64": {"head_channels": 64},
    "bf16": {"dtype_policy": "mixed_bfloat16"},
}
WARMUP_STEPS = 3  # tracing (and XLA compilation), oneDNN's first-call set-up


def _fit_step_times(steps, data_options):
    """Seconds between consecutive batch ends of `danet_keras.train` on a small demo city."""
    import keras

    from danet_keras.apps.demo import demo_training_config
    from danet_keras.training.trainer import train

    ends = []

    class BatchEnds(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        config = demo_training_config(os.path.join(folder, "city"))
        config.update(
            output_dir=os.path.join(folder, "run"),
            epochs=1,
            steps_per_epoch=WARMUP_STEPS + steps + 1,
            validation=False,
            verbose=0,
        )
        config["data_options"] = {**config.get("data_options", {}), **data_options}
        train(config, callbacks=[BatchEnds()])
    return [b - a for a, b in zip(ends[WARMUP_STEPS:], ends[WARMUP_STEPS + 1 :])]


def run_variant(name, steps):
    """Median seconds per training step of one variant, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    import danet_keras
    from danet_keras.data.demo_city import render_scene
    from danet_keras.training.config import recipe_fields

    variant = VARIANTS[name]
    recipe = recipe_fields("demo_city")
    crop = variant.get("crop", recipe["crop_size"])
    batch = variant.get("batch", recipe["batch_size"])
    if variant.get("fit"):
        times = _fit_step_times(steps, variant.get("data_options", {}))
        return {"variant": name, "batch": batch, "crop": crop, "step_s": statistics.median(times)}
    keras.utils.set_random_seed(0)
    if "dtype_policy" in variant:
        keras.mixed_precision.set_global_policy(variant["dtype_policy"])
    model_options = dict(recipe["model"])
    if "head_channels" in variant:
        model_options["head_channels"] = variant["head_channels"]
    model = danet_keras.DANet(19, **model_options)
    model.compile(
        learning_rate=recipe["learning_rate"],
        total_steps=1000,
        jit_compile=variant.get("jit_compile", False),
    )
    scenes = [render_scene((0, 0, i), (crop, crop)) for i in range(batch)]
    images = tf.constant(np.stack([s[0] for s in scenes]), tf.float32)
    # Label ids past the 19 classes are ignored (255), as unlabelled pixels are.
    ids = np.stack([s[1] for s in scenes]).astype(np.int32)
    labels = tf.constant(np.where(ids < 19, ids, 255))
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(images, labels)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
    assert np.isfinite(np.asarray(loss)).all(), loss
    return {"variant": name, "batch": batch, "crop": crop, "step_s": statistics.median(times)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(args.child, args.steps)))
        return 0
    from danet_keras.utils.cpu import kernels_description

    rows = []
    for name in args.variants:
        child = [sys.executable, __file__, "--child", name, "--steps", str(args.steps)]
        process = subprocess.run(child, capture_output=True, text=True)
        if process.returncode != 0:
            print(f"{name}: failed\n{process.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(process.stdout.strip().splitlines()[-1]))
    print(f"Training step of the demo's model on {kernels_description()}, median of {args.steps}")
    print(
        f"steps after {WARMUP_STEPS} warm-up steps, each variant in its own process, one at a "
        "time.\n"
    )
    print("| variant | batch | crop | s / step | ms / image | time per pixel vs plain |")
    print("|---|---|---|---|---|---|")
    plain = next((r for r in rows if r["variant"] == "plain"), None)
    for row in rows:
        per_image = row["step_s"] / row["batch"]
        ratio = "-"
        if plain:  # per pixel, so that a smaller crop compares with the plain one
            plain_per_pixel = plain["step_s"] / (plain["batch"] * plain["crop"] ** 2)
            ratio = f"{per_image / row['crop'] ** 2 / plain_per_pixel:.2f}x"
        print(
            f"| {row['variant']} | {row['batch']} | {row['crop']} | {row['step_s']:.3f} "
            f"| {1000 * per_image:.1f} | {ratio} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
