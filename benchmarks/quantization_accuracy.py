"""Accuracy of the reduced-precision forms of a trained model on a validation split.

Exports `--model` to TFLite (float32, float16, dynamic, int8; int8 calibrated
on images drawn from the training pipeline of the same dataset; `int8-before`
is the export with every op int8, as before issue 13, `int8` keeps the
attention's products and softmaxes in float32), builds the Keras inference
graph in float32 and in bfloat16 (`optimize_for_inference`, `keras-optimized`
and `keras-bf16`), then runs the Keras model and every artefact over the
validation images and prints, per artefact, the pixel agreement of
`class_ids` with the Keras model and the mIoU of each against the labels.
The trained demo model and the demo city:

    danet-keras demo --output danet_demo
    python benchmarks/quantization_accuracy.py --model danet_demo/training/best.keras \
        --data-dir danet_demo/demo_city
"""

import argparse
import os
import tempfile

import keras
import numpy as np

from danet_keras.data import load_dataset, train_pipeline
from danet_keras.export import export_tflite, load_runner
from danet_keras.export.runners import KerasRunner
from danet_keras.inference.optimize import optimize_for_inference
from danet_keras.metrics import MeanIoU


def validation_examples(dataset, data_dir, split):
    """(uint8 images (1, H, W, 3), int32 labels (1, H, W)) of a split, in order."""
    split_data = load_dataset(dataset, data_dir, split)
    for image, label in split_data.dataset.as_numpy_iterator():
        yield image[None].astype(np.uint8), label[None].astype(np.int32)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a trained .keras model")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="cityscapes")
    parser.add_argument("--split", default="val")
    parser.add_argument(
        "--quantizations",
        nargs="+",
        default=["float32", "float16", "dynamic", "int8", "int8-before"],
    )
    parser.add_argument(
        "--keras-variants",
        nargs="*",
        default=["keras-optimized", "keras-bf16", "keras-bf16-winograd"],
        help="Keras inference graphs to evaluate too (optimize_for_inference: float32, "
        "bfloat16 with direct or Winograd convolutions)",
    )
    parser.add_argument("--num-calibration-images", type=int, default=64)
    parser.add_argument(
        "-o", "--output", default=None, help="where to keep the .tflite files (default: a temp dir)"
    )
    args = parser.parse_args(argv)

    model = keras.models.load_model(args.model)
    examples = list(validation_examples(args.dataset, args.data_dir, args.split))
    input_size = examples[0][0].shape[1:3]
    calibration = train_pipeline(
        load_dataset(args.dataset, args.data_dir, "train"),
        crop_size=input_size,
        batch_size=8,
        seed=0,
    )

    out = args.output or tempfile.mkdtemp(prefix="quantization_")
    os.makedirs(out, exist_ok=True)
    runners = {"keras": KerasRunner(model)}
    graphs = {
        "keras-optimized": {},
        "keras-bf16": {"dtype_policy": "mixed_bfloat16", "winograd": False},
        "keras-bf16-winograd": {"dtype_policy": "mixed_bfloat16", "winograd": True},
    }
    for name in args.keras_variants:
        runners[name] = KerasRunner(optimize_for_inference(model, **graphs[name]))
    sizes = {}
    for quantization in args.quantizations:
        path = os.path.join(out, f"model_{quantization}.tflite")
        kind = quantization.removesuffix("-before")
        export_tflite(
            model,
            path,
            quantization=None if kind == "float32" else kind,
            representative_data=calibration if kind == "int8" else None,
            input_size=input_size,
            num_calibration_images=args.num_calibration_images,
            optimize=not quantization.endswith("-before"),
        )
        runners[quantization] = load_runner(path)
        sizes[quantization] = os.path.getsize(path) / 2**20

    num_classes = model.get_config()["num_classes"]
    metrics = {name: MeanIoU(num_classes) for name in runners}
    agree = {name: 0 for name in runners}
    pixels = 0
    for images, labels in examples:
        reference = None
        for name, runner in runners.items():
            class_ids = runner(images)["class_ids"]
            if reference is None:
                reference = class_ids
            agree[name] += int((class_ids == reference).sum())
            metrics[name].update_state(labels, class_ids)
        pixels += reference.size

    print(f"{len(examples)} {args.split} images of {input_size[0]}x{input_size[1]}, {args.model}")
    print(
        "| artefact | size (MB) | class agreement with Keras | mIoU (%) | mIoU - Keras (points) |"
    )
    print("|---|---|---|---|---|")
    keras_miou = 100 * float(metrics["keras"].result())
    for name in runners:
        miou = 100 * float(metrics[name].result())
        size = f"{sizes[name]:.1f}" if name in sizes else ""
        print(
            f"| {name} | {size} | {100 * agree[name] / pixels:.2f}% | {miou:.2f} "
            f"| {miou - keras_miou:+.2f} |"
        )


if __name__ == "__main__":
    main()
