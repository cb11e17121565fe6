"""Exported sizes and CPU latencies of DANet as TFLite float32 / float16 / int8.

    python benchmarks/export_sizes.py                      # ResNet-18 and -50 at 512x512
    python benchmarks/export_sizes.py --model trained.keras --calibration-images DIR

For each backbone: the Keras model's latency (TensorFlow, graph mode), then
each TFLite artefact's file size, latency (LiteRT with XNNPACK, median of
`--runs` after one warm-up) and parity with the Keras model (class_ids
agreement and max logit difference relative to the logit range, on
`--parity-images` synthetic images). Fresh models have random weights: their
near-tied logits make agreement a pessimistic figure for quantized models;
pass `--model` for a trained one. Timings drift on shared machines: compare
rows of one run only.
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def median_seconds(function, runs):
    function()  # warm-up (tracing, allocation)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument(
        "--model", default=None, help="a trained .keras model instead of fresh backbones"
    )
    parser.add_argument(
        "--size", nargs=2, type=int, default=[512, 512], metavar=("HEIGHT", "WIDTH")
    )
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--quantizations", nargs="+", default=["float32", "float16", "int8"])
    parser.add_argument("--calibration-images", default=None, help="directory of images for int8")
    parser.add_argument("--num-calibration-images", type=int, default=8)
    parser.add_argument("--parity-images", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import tensorflow as tf

    import danet_keras
    from danet_keras.apps.predict import image_files, read_image
    from danet_keras.export import check_parity, export_tflite, synthetic_images
    from danet_keras.export.runners import KerasRunner, TFLiteRunner

    size = tuple(args.size)
    parity_images = synthetic_images(args.parity_images, size, seed=1)
    if args.calibration_images:
        calibration = [
            read_image(f)
            for f in image_files(args.calibration_images)[: args.num_calibration_images]
        ]
    else:
        calibration = synthetic_images(args.num_calibration_images, size, seed=2)
    models = (
        [("trained", KerasRunner(args.model).model)]
        if args.model
        else [(b, danet_keras.DANet(args.num_classes, backbone=b)) for b in args.backbones]
    )
    print(f"{size[0]}x{size[1]}, batch 1, {args.threads} threads, median of {args.runs} runs")
    print(
        f"{'model':<10} {'artefact':<16} {'size MB':>8} {'latency s':>10} "
        f"{'agreement %':>12} {'rel. logit diff':>16}"
    )
    for name, model in models:
        image = tf.constant(parity_images[:1].astype(np.float32))
        keras_predict = tf.function(lambda x: model(x, training=False)["logits"])
        seconds = median_seconds(lambda: keras_predict(image).numpy(), args.runs)
        print(
            f"{name:<10} {'keras (TF graph)':<16} {'':>8} {seconds:>10.3f} {'':>12} {'':>16}",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as directory:
            for quantization in args.quantizations:
                path = os.path.join(directory, f"{quantization}.tflite")
                try:
                    export_tflite(
                        model,
                        path,
                        quantization=None if quantization == "float32" else quantization,
                        representative_data=calibration,
                        input_size=size,
                        num_calibration_images=args.num_calibration_images,
                    )
                except ValueError as error:
                    print(
                        f"{name:<10} {'tflite ' + quantization:<16} not exported: {error}",
                        flush=True,
                    )
                    continue
                runner = TFLiteRunner(path, num_threads=args.threads)
                seconds = median_seconds(lambda: runner(parity_images[:1]), args.runs)
                report = check_parity(model, runner, parity_images)
                print(
                    f"{name:<10} {'tflite ' + quantization:<16} "
                    f"{os.path.getsize(path) / 2**20:>8.1f} "
                    f"{seconds:>10.3f} {100 * report.class_agreement:>12.2f} "
                    f"{report.relative_logit_diff:>16.2e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
