"""DANet under each Keras backend (TensorFlow, JAX, PyTorch), side by side on this machine.

    python benchmarks/backends.py        # DANet-R50: 512x512 inference, a step at batch 2
    python benchmarks/backends.py --sizes 64x64 --backbone resnet18 --head-channels 16 --repeats 1

Each cell runs in its own child process with KERAS_BACKEND set
(`danet_keras.apps.benchmark.run_case_in_child`): its peak RSS is its own,
and one that passes `--max-rss-gb` is stopped and reported as out of memory.
Inference is Keras' own compiled predict step of the model as built
(`predict_on_batch`: a `tf.function` under TensorFlow, `jax.jit` under JAX,
eager PyTorch), one training step `compile()`'s recipe by `train_on_batch`
(forward, the three cross-entropies, backward, LayerwiseSGD). Times are the
median of `--repeats` calls after one warm-up call (which compiles). The
backends take turns cell by cell, so drifting load on a shared machine
falls on all of them; compare only figures of one run.
"""

import argparse
import sys

from danet_keras.apps.benchmark import DEFAULT_MAX_RSS_GB, run_case_in_child
from danet_keras.utils.cpu import kernels_description
from danet_keras.utils.output_paths import OutputRefused, check_file_artefact, write_artefact_bytes

BACKENDS = ("tensorflow", "jax", "torch")
# What the output file is, for danet-keras' record of the files it wrote.
TABLE_KIND = "benchmark results"


def parse_size(text):
    """[H, W] of "HxW"; a bad size exits with a one-line message."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        sys.exit(f"error: a size is HEIGHTxWIDTH, e.g. 512x512; got {text!r}")
    if height < 32 or width < 32:
        sys.exit(f"error: sizes start at 32x32 (output stride 8 of a ResNet); got {text!r}")
    return [height, width]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--head-channels", type=int, default=None)
    parser.add_argument("--sizes", nargs="+", default=["512x512"], help="HEIGHTxWIDTH, each")
    parser.add_argument("--inference-batch", type=int, default=1)
    parser.add_argument("--training-batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up")
    parser.add_argument("--max-rss-gb", type=float, default=DEFAULT_MAX_RSS_GB)
    parser.add_argument("-o", "--output", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    args.sizes = [parse_size(size) for size in args.sizes]
    for name in ("inference_batch", "training_batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def cell(result, backend):
    """'seconds s / peak GB', or the error."""
    if "error" in result:
        return result["error"]
    if result["backend"] != backend:
        return f"ran under {result['backend']}, not {backend}"
    return f"{result['median_s']:.2f} s / {result['peak_rss_mb'] / 1024:.2f} GB"


def measure(args):
    """Rows of the table: one per (size, task), a cell per backend."""
    rows = []
    for size in args.sizes:
        for task, batch in (("inference", args.inference_batch), ("training", args.training_batch)):
            row = [f"{task} {size[0]}x{size[1]}, batch {batch}"]
            for backend in args.backends:
                case = dict(
                    task=task,
                    side="backend",
                    backend=backend,
                    backbone=args.backbone,
                    num_classes=args.num_classes,
                    head_channels=args.head_channels,
                    size=size,
                    batch=batch,
                    repeats=args.repeats,
                )
                result = run_case_in_child(case, max_rss_gb=args.max_rss_gb)
                row.append(cell(result, backend))
                print(f"{row[0]}, {backend}: {row[-1]}", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def table(args, rows):
    header = ["DANet-" + args.backbone + f" ({args.num_classes} classes)"] + args.backends
    lines = [
        f"CPU: {kernels_description()}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"median of {args.repeats} calls after one warm-up; time / peak RSS per process"]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.output:
        try:  # before minutes of measuring: never replace a file danet-keras did not write
            check_file_artefact(args.output, TABLE_KIND, overwrite=True)
        except OutputRefused as error:
            sys.exit(f"error: {error}")
    text = table(args, measure(args))
    print(text)
    if args.output:
        write_artefact_bytes(args.output, TABLE_KIND, (text + "\n").encode(), overwrite=True)


if __name__ == "__main__":
    main()
