"""Peak memory of a served SavedModel against the plain Keras model, each in a fresh process.

    python benchmarks/serving_memory.py                          # DANet-R50, 1024x2048
    python benchmarks/serving_memory.py --size 512x1024 --backbone resnet18

One model (random weights) is saved as `.keras` and exported as SavedModels.
Then each row runs once, in a process of its own, on one image of `--size`:

- `Keras model(x)`: the `.keras` file loaded, the model called in inference
  mode in a `tf.function` (all its outputs), as `benchmarks/vs_pytorch.py`
  times it;
- `predict_class_map`: `DANet.predict_class_map`, the library's prediction;
- `served: ...`: `tf.saved_model.load` and the `serving_default` signature,
  in a process that imports TensorFlow only, as TF Serving runs it. The
  variants: the export as `export_saved_model` writes it (BatchNorm folded,
  convolutions sliced where measured faster on this machine), and the same
  with BatchNorm folding alone, with Winograd, without any rewrite, and
  answering `class_ids` only.

Peak RSS is the process's whole high-water mark (VmHWM): libraries,
weights and the one request. Memory does not depend on the machine's load;
each row is a fresh process, so rows are independent.
"""

import argparse
import json
import os
import tempfile

from danet_keras.apps.benchmark.measure import one_image_peak_rss_mb
from danet_keras.cli.arguments import add_size_argument
from danet_keras.utils.cpu import kernels_description
from danet_keras.utils.output_paths import OutputRefused, check_file_artefact, write_artefact_bytes

# What the output file is, for danet-keras' record of the files it wrote.
TABLE_KIND = "benchmark results"


def peak_of(kind, model, size):
    """`one_image_peak_rss_mb` as a row: {"peak_rss_mb": MiB} or {"error": ...}."""
    try:
        return {"peak_rss_mb": one_image_peak_rss_mb(kind, model, size)}
    except RuntimeError as error:
        return {"error": str(error)}


def write_models(directory, backbone, num_classes, seed):
    """The `.keras` file and the served variants of one model: {label: path}."""
    # deferred: the parent process loads TensorFlow only once the arguments are checked
    import keras

    from danet_keras import DANet
    from danet_keras.export import export_saved_model
    from danet_keras.export.saved_model import build_export_archive
    from danet_keras.inference.optimize import inference_model

    keras.utils.set_random_seed(seed)
    model = DANet(num_classes, backbone=backbone)
    paths = {"keras": os.path.join(directory, "model.keras")}
    model.save(paths["keras"])
    paths["served: export_saved_model"] = export_saved_model(model, os.path.join(directory, "sm"))
    variants = {
        "served: BatchNorm folded only (no sliced convolutions)": dict(
            model=inference_model(model, sliced_convs=None)
        ),
        "served: with Winograd": dict(model=inference_model(model, winograd=True)),
        "served: no rewrite": dict(model=inference_model(model, optimize=False)),
    }
    for label, options in variants.items():
        path = os.path.join(directory, f"variant{len(paths)}")
        build_export_archive(options["model"]).write_out(path, verbose=False)
        paths[label] = path
    paths["served: class_ids only"] = export_saved_model(
        model, os.path.join(directory, "ids"), outputs=("class_ids",)
    )
    return paths


def measure(paths, size):
    rows = {
        "Keras model(x)": peak_of("keras_call", paths["keras"], size),
        "predict_class_map": peak_of("predict_class_map", paths["keras"], size),
    }
    for label, path in paths.items():
        if label.startswith("served"):
            rows[label] = peak_of("served", path, size)
    return rows


def table(rows, backbone, size):
    reference = rows["Keras model(x)"].get("peak_rss_mb")
    lines = [
        f"CPU: {kernels_description()}",
        "",
        f"DANet-{backbone}, one {size[0]}x{size[1]} image, each row a fresh process",
        "",
        "| process | peak RSS (MB) | vs Keras model(x) |",
        "|---|---|---|",
    ]
    for label, row in rows.items():
        if "error" in row:
            lines.append(f"| {label} | error: {row['error']} | |")
            continue
        ratio = f"{row['peak_rss_mb'] / reference:.2f}x" if reference else ""
        lines.append(f"| {label} | {row['peak_rss_mb']:.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="resnet50")
    add_size_argument(parser, "--size", "the image (default 1024x2048)", default=(1024, 2048))
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json",
        help="also write the rows to this JSON file (new, or one this script wrote)",
    )
    args = parser.parse_args(argv)
    if args.json:
        try:  # before minutes of measuring: never replace a file danet-keras did not write
            check_file_artefact(args.json, TABLE_KIND, overwrite=True)
        except OutputRefused as error:
            parser.exit(2, f"error: {error}\n")
    with tempfile.TemporaryDirectory(prefix="serving_memory_") as directory:
        try:
            paths = write_models(directory, args.backbone, args.num_classes, args.seed)
        except ValueError as error:  # DANet's one-line refusal of a bad backbone or class count
            parser.exit(2, f"error: {error}\n")
        rows = measure(paths, args.size)
    print(table(rows, args.backbone, args.size))
    if args.json:
        data = json.dumps(rows, indent=1).encode()
        write_artefact_bytes(args.json, TABLE_KIND, data, overwrite=True)


if __name__ == "__main__":
    main()
