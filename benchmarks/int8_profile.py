"""Where a TFLite DANet spends its time, section by section: float32, int8 before and after.

    python benchmarks/int8_profile.py                         # DANet-ResNet50, 512x512
    python benchmarks/int8_profile.py --backbone resnet18 --size 128 128 --runs 2   # quick

LiteRT's Python API has no per-op profiler, so the graph is split: each
section of the exported graph (`optimize_for_inference` with direct
convolutions, what `export_tflite` converts) becomes a TFLite model of its
own with float inputs of the real shapes, converted three ways and timed
with XNNPACK (median of `--runs` after a warm-up, the three alternating):

- float32;
- int8 "before": every op int8 (the converter's `TFLITE_BUILTINS_INT8`, the
  export before issue 13);
- int8 "now": the export's selective quantization, with the ops of
  `export.quantization.FLOAT_OPS_IN_INT8` (the attentions' products,
  softmaxes, row max and subtraction) kept in float32.

Each int8 section is calibrated on the float model's activations of
`--calibration-images` synthetic images. "not delegated" lists the ops that
XNNPACK left to TFLite's builtin kernels. The model has random weights with
BatchNorm statistics measured on synthetic images and attention scales of
0.5 (so the ranges, hence the kernels' work, are realistic).
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def calibrated_danet(backbone, num_classes, images):
    import keras

    import danet_keras

    keras.utils.set_random_seed(0)
    model = danet_keras.DANet(num_classes, backbone=backbone)
    batchnorms = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in batchnorms:
        layer.momentum = 0.0
    model(np.float32(images), training=True)
    for layer in batchnorms:
        layer.momentum = 0.9
    model.get_layer("position_attention").gamma.assign(0.5)
    model.get_layer("channel_attention").beta.assign(0.5)
    return model


def sections(graph):
    """(name, input tensors, output tensors) of consecutive parts of the flattened DANet."""

    def out(name):
        return graph.get_layer(name).output

    stage3 = [layer.name for layer in graph.layers if layer.name.startswith("stage3_")][-1]
    stage4 = [layer.name for layer in graph.layers if layer.name.startswith("stage4_")][-1]
    position, channel = out("position_reduce_conv"), out("channel_reduce_conv")
    return [
        ("stem + stages 1-3", [graph.input], [out(stage3)]),
        ("stage 4", [out(stage3)], [out(stage4)]),
        ("branch-reduce convs", [out(stage4)], [position, channel]),
        ("position attention", [position], [out("position_attention")]),
        ("channel attention", [channel], [out("channel_attention")]),
        (
            "branch-project convs",
            [out("position_attention"), out("channel_attention")],
            [out("position_project_conv"), out("channel_project_conv")],
        ),
        (
            "classifier + upsampling",
            [out("position_project_conv"), out("channel_project_conv"), graph.input],
            [graph.output["logits"]],
        ),
    ]


def to_tflite(model, calibration, mode, float_ops, directory):
    """A TFLite flatbuffer of a Keras model with float (or the images') inputs."""
    import keras
    import tensorflow as tf

    from danet_keras.export.quantization import convert_int8

    # Static shapes (those of the calibration inputs), as the export has.
    specs = [
        tf.TensorSpec(x.shape, tf.float32, name=f"input_{i}") for i, x in enumerate(calibration[0])
    ]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda *xs: {
            f"output_{i}": y
            for i, y in enumerate(tf.nest.flatten(model(xs[0] if len(xs) == 1 else list(xs))))
        },
        input_signature=specs,
    )
    path = os.path.join(directory, "section")
    archive.write_out(path, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    if mode == "float32":
        return converter.convert()
    converter.representative_dataset = lambda: (
        {f"input_{i}": x for i, x in enumerate(sample)} for sample in calibration
    )
    return convert_int8(converter, float_ops)


def not_delegated(interpreter):
    """Op names XNNPACK left to the builtin kernels (from the delegate partitions' edges)."""
    ops = interpreter._get_ops_details()
    delegate_inputs, delegate_outputs = set(), set()
    for op in ops:
        if op["op_name"] == "DELEGATE":
            delegate_inputs.update(op["inputs"])
            delegate_outputs.update(op["outputs"])
    graph_outputs = {d["index"] for d in interpreter.get_output_details()}
    plain = [op for op in ops if op["op_name"] != "DELEGATE"]
    consumers = {}
    for op in plain:
        for tensor in op["inputs"]:
            consumers.setdefault(tensor, []).append(op)
    outside, changed = set(), True
    while changed:  # an op runs outside when its result leaves to XNNPACK, the output, or it
        changed = False
        for op in plain:
            if op["index"] in outside:
                continue
            for tensor in op["outputs"]:
                if tensor in delegate_outputs:
                    continue
                if (
                    tensor in delegate_inputs
                    or tensor in graph_outputs
                    or any(user["index"] in outside for user in consumers.get(tensor, []))
                ):
                    outside.add(op["index"])
                    changed = True
                    break
    names = sorted(op["op_name"] for op in plain if op["index"] in outside)
    return ", ".join(f"{name} x{names.count(name)}" for name in sorted(set(names)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", nargs=2, type=int, default=[512, 512])
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--calibration-images", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)

    import keras
    from ai_edge_litert import interpreter as litert

    from danet_keras.apps.benchmark import benchmark_images
    from danet_keras.export.quantization import FLOAT_OPS_IN_INT8
    from danet_keras.inference.optimize import optimize_for_inference

    size = tuple(args.size)
    images = benchmark_images(args.calibration_images, size, seed=3)
    model = calibrated_danet(args.backbone, args.num_classes, benchmark_images(4, size, seed=4))
    graph = optimize_for_inference(model, winograd=False)
    modes = {"float32": (), "int8 before": (), "int8 now": FLOAT_OPS_IN_INT8}
    print(
        f"DANet-{args.backbone} {size[0]}x{size[1]}, LiteRT + XNNPACK, {args.threads} threads, "
        f"median of {args.runs} runs (ms)"
    )
    print(
        "| section | float32 | int8 before | int8 now | not delegated (before) "
        "| not delegated (now) |"
    )
    print("|---|---|---|---|---|---|")
    totals = dict.fromkeys(modes, 0.0)
    for name, inputs, outputs in sections(graph):
        section = keras.Model(inputs, outputs)
        feed = keras.Model(graph.input, inputs)
        calibration = []
        for image in images:
            values = feed(np.float32(image[None]))
            values = values if isinstance(values, (list, tuple)) else [values]
            calibration.append([np.asarray(v, np.float32) for v in values])
        runners, delegation = {}, {}
        with tempfile.TemporaryDirectory() as directory:
            for mode, float_ops in modes.items():
                flatbuffer = to_tflite(section, calibration, mode.split()[0], float_ops, directory)
                interpreter = litert.Interpreter(model_content=flatbuffer, num_threads=args.threads)
                interpreter.allocate_tensors()
                runners[mode] = interpreter.get_signature_runner("serving_default")
                delegation[mode] = not_delegated(interpreter)
        sample = {f"input_{i}": x for i, x in enumerate(calibration[0])}
        times = {mode: [] for mode in modes}
        for runner in runners.values():
            runner(**sample)
        for _ in range(args.runs):
            for mode, runner in runners.items():
                start = time.perf_counter()
                runner(**sample)
                times[mode].append(1000 * (time.perf_counter() - start))
        medians = {mode: statistics.median(t) for mode, t in times.items()}
        for mode in modes:
            totals[mode] += medians[mode]
        print(
            f"| {name} | {medians['float32']:.1f} | {medians['int8 before']:.1f} | "
            f"{medians['int8 now']:.1f} | {delegation['int8 before'] or '-'} | "
            f"{delegation['int8 now'] or '-'} |",
            flush=True,
        )
    print(
        f"| **sum** | {totals['float32']:.0f} | {totals['int8 before']:.0f} | "
        f"{totals['int8 now']:.0f} | | |"
    )


if __name__ == "__main__":
    main()
