"""Levers of the demo's training step, side by side on this CPU (issue 24).

Each variant trains the demo's model (the `demo_city` recipe of the dataset
registry: DANet-ResNet18, output stride 16, 19 classes, `compile()`'s paper
recipe) on fixed demo-city scenes for a few steps, in a fresh process of its
own, one variant after the other (never two at once). The table gives the
median time per step and per image, and the ratio to the plain step.

    python benchmarks/training_levers.py [--steps 12] [--variants plain xla ...]

Variants:
    plain        model.fit's step as `danet_keras.train` runs it (no XLA)
    xla          the same step compiled with XLA (`compile(jit_compile=True)`)
    batch16      plain, batch 16 (per-image cost of a larger batch)
    xla_batch16  xla, batch 16
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "plain": {"jit_compile": False, "batch": None},
    "xla": {"jit_compile": True, "batch": None},
    "batch16": {"jit_compile": False, "batch": 16},
    "xla_batch16": {"jit_compile": True, "batch": 16},
}


def run_variant(name, steps):
    """Median seconds per training step of one variant, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    import danet_keras
    from danet_keras.data.demo_city import render_scene
    from danet_keras.training.config import recipe_fields

    recipe = recipe_fields("demo_city")
    crop = recipe["crop_size"]
    batch = VARIANTS[name]["batch"] or recipe["batch_size"]
    keras.utils.set_random_seed(0)
    model = danet_keras.DANet(19, **recipe["model"])
    model.compile(
        learning_rate=recipe["learning_rate"],
        total_steps=1000,
        jit_compile=VARIANTS[name]["jit_compile"],
    )
    scenes = [render_scene((0, 0, i), (crop, crop)) for i in range(batch)]
    images = tf.constant(np.stack([s[0] for s in scenes]), tf.float32)
    # Label ids past the 19 classes are ignored (255), as unlabelled pixels are.
    ids = np.stack([s[1] for s in scenes]).astype(np.int32)
    labels = tf.constant(np.where(ids < 19, ids, 255))
    for _ in range(3):  # tracing (and XLA compilation), oneDNN's first-call set-up
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
    from danet_keras.utils.cpu import cpu_description

    rows = []
    for name in args.variants:
        child = [sys.executable, __file__, "--child", name, "--steps", str(args.steps)]
        process = subprocess.run(child, capture_output=True, text=True)
        if process.returncode != 0:
            print(f"{name}: failed\n{process.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(process.stdout.strip().splitlines()[-1]))
    print(f"Training step of the demo's model on {cpu_description()}, median of {args.steps}")
    print("steps after 3 warm-up steps, each variant in its own process, one at a time.\n")
    print("| variant | batch | crop | s / step | ms / image | per image vs plain |")
    print("|---|---|---|---|---|---|")
    plain = next((r for r in rows if r["variant"] == "plain"), None)
    for row in rows:
        per_image = row["step_s"] / row["batch"]
        ratio = f"{per_image / (plain['step_s'] / plain['batch']):.2f}x" if plain else "-"
        print(
            f"| {row['variant']} | {row['batch']} | {row['crop']} | {row['step_s']:.3f} "
            f"| {1000 * per_image:.1f} | {ratio} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
