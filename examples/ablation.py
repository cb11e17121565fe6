"""The structure of the DANet paper's Table 1, on the demo city.

    python examples/ablation.py                 # the README's table: 4 variants x 3 seeds
    python examples/ablation.py --smoke         # a few steps per training, for CI

Four models that differ only in their head: the dilated FCN (`attention=()`),
+ position attention, + channel attention, and both (DANet). Everything else
is the same for every variant: the backbone (ResNet-18, output stride 16, as
`danet-keras demo`), the training recipe and schedule (`danet_keras.train`
with the demo's settings and 8 epochs instead of 24), and the data (the demo city of
`danet-keras demo`: 200 training and 40 validation images of 128x256). Seed s
seeds Keras (the initial weights) and the input pipeline (shuffling and
augmentation) of every variant alike, so that the variants of one seed form a
paired comparison. Each model is scored after its last epoch on the
validation city (`danet_keras.evaluate`, single scale); no epoch is picked on
the validation set.

Writes, under `--output`:

    runs/<variant>_seed<s>/   each training (resumable: run the command again)
    results.json              one record per finished training; runs already
                              recorded are not trained again
    ablation.md               the table: mean +- sample standard deviation of
                              the validation mIoU over the seeds, and the paper's
                              Cityscapes numbers (ResNet-50) beside it
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

# Paper, Table 1: Cityscapes val mIoU (%), ResNet-50 backbone.
PAPER_MIOU = {
    "dilated FCN": 70.03,
    "+ position attention": 75.74,
    "+ channel attention": 74.28,
    "DANet (both)": 76.34,
}
VARIANTS = {
    "dilated FCN": (),
    "+ position attention": ("position",),
    "+ channel attention": ("channel",),
    "DANet (both)": ("position", "channel"),
}
# Epochs of the real setting (the demo trains 24): 12 trainings in about an hour on 2 shared
# CPU cores, where one demo epoch took 36 s.
EPOCHS = 8


def training_settings(data_dir, smoke):
    """`TrainConfig` fields shared by every run: the demo's training, with `EPOCHS` epochs."""
    from danet_keras.apps.demo import demo_training_config

    settings = demo_training_config(data_dir, quick=smoke)
    if not smoke:
        settings["epochs"] = EPOCHS
    return settings


def run_name(variant, seed):
    slug = "".join(c if c.isalnum() else "_" for c in variant.lower()).strip("_")
    return f"{slug}_seed{seed}"


def train_and_score(variant, seed, run_dir, train_settings):
    """Trains one variant with one seed; returns its record (validation mIoU of the last epoch)."""
    import keras

    import danet_keras
    from danet_keras.data import DATASETS, eval_pipeline, load_dataset

    config = dict(
        train_settings,
        model=dict(train_settings["model"], attention=VARIANTS[variant]),
        output_dir=run_dir,
        strategy="one_device",
        seed=seed,
        validation=False,  # scored once, after the last epoch
        tensorboard=False,
        verbose=0,
    )
    start = time.perf_counter()
    trained = danet_keras.train(config)
    if trained.stopped_on_nan:
        raise RuntimeError(f"{variant}, seed {seed}: the training diverged (NaN loss).")
    seconds = time.perf_counter() - start
    evaluation = danet_keras.evaluate(
        trained.model,
        eval_pipeline(load_dataset("demo_city", train_settings["data_dir"], "val"), batch_size=4),
        class_names=DATASETS["cityscapes"].class_names,
        verbose=False,
    )
    record = {
        "variant": variant,
        "attention": list(VARIANTS[variant]),
        "seed": seed,
        "mean_iou": evaluation.mean_iou,
        "pixel_accuracy": evaluation.pixel_accuracy,
        "parameters": trained.model.count_params(),
        "training_seconds": round(seconds, 1),
    }
    keras.backend.clear_session()
    return record


def summarize(records):
    """{variant: (mean, sample std or NaN with one seed, count, per-seed values)}, mIoU in %."""
    summary = {}
    for variant in VARIANTS:
        values = [100 * r["mean_iou"] for r in records if r["variant"] == variant]
        if values:
            std = statistics.stdev(values) if len(values) > 1 else math.nan
            summary[variant] = (statistics.fmean(values), std, len(values), values)
    return summary


def markdown_table(records, command):
    """The Markdown table of `summarize(records)`, with the paper's numbers and how it was made."""
    lines = [
        "| model | demo city val mIoU (%), mean ± std | seeds | per seed | "
        "paper, Cityscapes val (ResNet-50) |",
        "|---|---|---|---|---|",
    ]
    for variant, (mean, std, count, values) in summarize(records).items():
        spread = "n/a" if math.isnan(std) else f"{std:.2f}"
        per_seed = ", ".join(f"{v:.2f}" for v in values)
        lines.append(
            f"| {variant} | {mean:.2f} ± {spread} | {count} | {per_seed} | {PAPER_MIOU[variant]} |"
        )
    lines.append("")
    lines.append(
        f"`{command}`; ± is the sample standard deviation over the seeds (same seeds for every "
        "variant)."
    )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="ablation", help="default ./ablation")
    parser.add_argument(
        "--data-dir", help="the demo city (default OUTPUT/demo_city; written when absent)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny images, 2 training steps (CI; means nothing)"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    from danet_keras.utils.atomic_io import write_json, write_text
    from danet_keras.utils.output_paths import own_folder

    # The ablation owns its folder; running it again resumes from results.json.
    own_folder(args.output, "ablation", "the ablation")
    data_dir = args.data_dir or os.path.join(args.output, "demo_city")
    train_settings = training_settings(data_dir, args.smoke)
    results_path = os.path.join(args.output, "results.json")
    records = []
    if os.path.exists(results_path):
        with open(results_path) as f:
            records = json.load(f)
    done = {(r["variant"], r["seed"]) for r in records}
    for seed in range(args.seeds):
        for variant in VARIANTS:
            if (variant, seed) in done:
                continue
            run_dir = os.path.join(args.output, "runs", run_name(variant, seed))
            record = train_and_score(variant, seed, run_dir, train_settings)
            records.append(record)
            write_json(results_path, records)
            print(
                f"[ablation] {variant:<22} seed {seed}: mIoU {100 * record['mean_iou']:.2f} "
                f"({record['training_seconds']:.0f} s)",
                flush=True,
            )
    command = "python examples/ablation.py" + (" --smoke" if args.smoke else "")
    if args.seeds != 3:
        command += f" --seeds {args.seeds}"
    table = markdown_table([r for r in records if r["seed"] < args.seeds], command)
    write_text(os.path.join(args.output, "ablation.md"), table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
