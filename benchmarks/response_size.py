"""The size of a TF Serving REST response for one frame, by what the SavedModel returns.

    python benchmarks/response_size.py                       # a 1024x2048 frame, 19 classes
    python benchmarks/response_size.py --model danet_demo/training/best.keras --size 512x1024

A REST `predict` answer is JSON: TF Serving writes every element of every output
tensor as a number. The script exports one model twice, with all three outputs (the
default) and with `outputs=("class_ids",)` (`danet-keras export --outputs class_ids`),
runs both `serving_default` signatures on one frame in this process, and counts the
bytes of the JSON that TF Serving's REST API would send for them (`rest_response_size`:
the row format, `{"predictions": [...]}`; floats with 6 significant digits, 9 where 6
do not give the float back, as tensorflow_serving/util/json_tensor.cc writes them;
arrays on one line with ", " between elements). The rows with probabilities and logits
come from the full export's answer. Without `--model` the model is the demo's
architecture (DANet-ResNet-18, output stride 16) with random weights; the sizes depend
on the number of digits of the values, not on what they mean.
"""

import argparse
import os
import tempfile

import numpy as np

# The members of one prediction, in the order TF Serving writes them (its tensor map is
# ordered by name).
ROWS = (("class_ids",), ("class_ids", "probabilities"), ("class_ids", "logits", "probabilities"))


def format_number(value):
    """One element as TF Serving's REST API writes it (the reference `rest_response_size` counts).

    Integers as they are; a float with 6 significant digits (printf's %g), or 9 when 6
    do not read back as the same float32, with ".0" added to a whole number.
    """
    if np.issubdtype(type(value), np.integer):
        return str(int(value))
    value = np.float32(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = "%.6g" % value
    if np.float32(text) != value:
        text = "%.9g" % value
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _array_text(values):
    if np.ndim(values) == 0:
        return format_number(values)
    return "[" + ", ".join(_array_text(value) for value in values) + "]"


def rest_response_text(outputs):
    """The whole row-format response of a batch of one image (small tensors: tests).

    Args:
        outputs: {name: array (1, ...)} of the signature's outputs.

    Returns:
        The JSON text.
    """
    names = sorted(outputs)
    if len(names) == 1:
        return '{\n    "predictions": [' + _array_text(outputs[names[0]][0]) + "\n    ]\n}"
    members = ",\n".join(f'            "{name}": {_array_text(outputs[name][0])}' for name in names)
    return '{\n    "predictions": [\n        {\n' + members + "\n        }\n    ]\n}"


def _numbers_length(values, chunk=1 << 20):
    """The summed lengths of `format_number` over `values`, vectorised in chunks."""
    flat = np.asarray(values).reshape(-1)
    if np.issubdtype(flat.dtype, np.integer):
        return int(np.char.str_len(flat.astype(str)).sum())
    if not np.all(np.isfinite(flat)):
        raise ValueError("non-finite outputs: count them with rest_response_text")
    total = 0
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk].astype(np.float32)
        texts = np.char.mod("%.6g", part)
        exact = texts.astype(np.float32) == part
        long = np.char.mod("%.9g", part[~exact])
        total += int(np.char.str_len(texts[exact]).sum() + np.char.str_len(long).sum())
        for kept in (texts[exact], long):
            whole = (np.char.find(kept, ".") < 0) & (np.char.find(kept, "e") < 0)
            total += 2 * int(whole.sum())  # ".0"
    return total


def _array_length(shape, values):
    """Bytes of `_array_text` of an array of `shape`: brackets, separators and numbers."""
    brackets, separators, arrays = 0, 0, 1
    for size in shape:
        brackets += 2 * arrays
        separators += 2 * arrays * (size - 1)
        arrays *= size
    return brackets + separators + _numbers_length(values)


def rest_response_size(outputs):
    """Bytes of `rest_response_text(outputs)`, counted without writing it out.

    Args:
        outputs: {name: array (1, ...)} of the signature's outputs.
    """
    names = sorted(outputs)
    if len(names) == 1:
        skeleton = len('{\n    "predictions": [' + "\n    ]\n}")
    else:
        keys = sum(len(f'            "{name}": ') for name in names) + 2 * (len(names) - 1)
        skeleton = keys + len('{\n    "predictions": [\n        {\n' + "\n        }\n    ]\n}")
    arrays = sum(_array_length(outputs[name].shape[1:], outputs[name][0]) for name in names)
    return skeleton + arrays


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="a .keras model (default: see above)")
    parser.add_argument("--size", default="1024x2048", help="the frame, HEIGHTxWIDTH")
    parser.add_argument("--num-classes", type=int, default=19)
    args = parser.parse_args(argv)
    height, width = (int(side) for side in args.size.lower().split("x"))

    import keras
    import tensorflow as tf

    import danet_keras
    from danet_keras.data import DATASETS
    from danet_keras.export import export_saved_model, synthetic_images
    from danet_keras.training.config import recipe_fields

    if args.model:
        model = keras.saving.load_model(args.model)
        what = args.model
    else:
        keras.utils.set_random_seed(0)
        config = recipe_fields("demo_city")["model"]
        classes = DATASETS["cityscapes"] if args.num_classes == 19 else None
        model = danet_keras.DANet(
            args.num_classes,
            class_names=classes and classes.class_names,
            palette=classes and classes.palette,
            **config,
        )
        what = f"DANet ({config}), random weights"
    frame = tf.constant(synthetic_images(1, (height, width), seed=0))
    answers = {}
    with tempfile.TemporaryDirectory() as folder:
        for outputs in (None, ("class_ids",)):
            path = os.path.join(folder, "all" if outputs is None else "class_ids", "1")
            export_saved_model(model, path, outputs=outputs, max_request_pixels=height * width)
            signature = tf.saved_model.load(path).signatures["serving_default"]
            answer = {key: value.numpy() for key, value in signature(images=frame).items()}
            answers[outputs] = answer
    print(f"{what}; one {height}x{width} frame, {model.num_classes} classes")
    print("| the SavedModel returns | REST JSON response (MB) | tensors as binary (MB) |")
    print("|---|---|---|")
    rows = [(("class_ids",), answers[("class_ids",)])]
    rows += [(names, {name: answers[None][name] for name in names}) for names in ROWS[1:]]
    for names, outputs in rows:
        size = rest_response_size(outputs)
        binary = sum(value.nbytes for value in outputs.values())
        label = ", ".join(names) + (" (the default)" if len(names) == 3 else "")
        print(f"| {label} | {size / 1e6:,.1f} | {binary / 1e6:,.1f} |")


if __name__ == "__main__":
    main()
