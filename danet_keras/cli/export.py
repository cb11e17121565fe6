"""`danet-keras export`: SavedModel / TFLite / ONNX, then a parity report against Keras."""

from danet_keras.cli.arguments import (
    NO_LIMIT,
    add_boolean_argument,
    add_output_argument,
    add_size_argument,
)

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("float16", "dynamic", "int8")
DEFAULT_TFLITE_SIZE = (512, 512)


def _parity_images(args, size):
    # Imported here, not at the top: `danet-keras --help` must not import TensorFlow.
    import numpy as np

    from danet_keras.apps.predict import image_files, read_image
    from danet_keras.export import synthetic_images
    from danet_keras.export.runners import resize_images

    if args.parity_images is None:
        return synthetic_images(args.num_parity_images, size), "synthetic images"
    files = image_files(args.parity_images)[: args.num_parity_images]
    images = np.concatenate([resize_images(read_image(f)[None], size) for f in files])
    return images, f"{len(files)} images of {args.parity_images}"


def _positive_int(flag, value):
    """`value` (the flag's text) as a positive int, else a one-line ValueError."""
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{flag} takes a positive integer, got {value!r}.")
    return int(value)


def _saved_model_limits(args):
    """`export_saved_model` keyword arguments from the limit flags (none given: its defaults)."""
    limits = {}
    given = [
        flag
        for flag, value in (
            ("--max-image-size", args.max_image_size),
            ("--max-batch-size", args.max_batch_size),
            ("--max-request-pixels", args.max_request_pixels),
            ("--outputs", args.outputs),
        )
        if value is not None
    ]
    if given and args.format != "saved_model":
        raise ValueError(f"{given[0]} applies to --format saved_model only, not {args.format}.")
    if args.max_image_size is not None:
        limits["max_image_size"] = None if args.max_image_size == NO_LIMIT else args.max_image_size
    if args.max_batch_size is not None:
        limits["max_batch_size"] = _positive_int("--max-batch-size", args.max_batch_size)
    if args.max_request_pixels is not None:
        limits["max_request_pixels"] = _positive_int(
            "--max-request-pixels", args.max_request_pixels
        )
    return limits


def export(args):
    if args.quantization is not None and args.format != "tflite":
        raise ValueError(f"--quantization applies to --format tflite only, not {args.format}.")
    if args.dtype_policy is not None and args.format != "saved_model":
        raise ValueError(f"--dtype-policy applies to --format saved_model only, not {args.format}.")
    limits = _saved_model_limits(args)
    if args.quantization == "int8" and args.representative_data is None:
        raise ValueError(
            "--quantization int8 needs --representative-data DIR: a directory of training images "
            "(a few dozen to a few hundred) to calibrate the int8 ranges."
        )
    # Imported here, not at the top: `danet-keras --help` must not import TensorFlow.
    from danet_keras import export as export_lib
    from danet_keras.utils.backends import require_tensorflow_backend

    # Before the model is loaded: the artefacts are TensorFlow graphs.
    require_tensorflow_backend("Export")
    from danet_keras.apps.predict import image_files, read_image
    from danet_keras.export.runners import KerasRunner
    from danet_keras.export.saved_model import serving_output_keys
    from danet_keras.utils.output_paths import check_file_artefact, check_folder_artefact

    # Refused before the model is loaded: unknown outputs, an output path that is not
    # new or ours, or an input.
    outputs = serving_output_keys(args.outputs)
    if args.format == "saved_model":
        check_folder_artefact(args.output, "saved_model", args.overwrite, inputs=[args.model])
    else:
        check_file_artefact(args.output, args.format, args.overwrite, inputs=[args.model])
    model = KerasRunner(args.model).model
    size = args.input_size
    # The inference graph (BatchNorm folded), unless --no-optimize.
    optimize = args.optimize
    if args.format == "saved_model":
        export_lib.export_saved_model(
            model,
            args.output,
            image_size=size,
            optimize=optimize,
            dtype_policy=args.dtype_policy,
            overwrite=args.overwrite,
            outputs=outputs,
            sliced_convs="auto" if args.sliced_convs == "auto" else None,
            **limits,
        )
    elif args.format == "onnx":
        export_lib.export_onnx(model, args.output, input_size=size, overwrite=args.overwrite)
    else:
        size = size or DEFAULT_TFLITE_SIZE
        representative = None
        if args.representative_data is not None:
            files = image_files(args.representative_data)[: args.num_calibration_images]
            representative = (read_image(f) for f in files)
        export_lib.export_tflite(
            model,
            args.output,
            quantization=args.quantization,
            representative_data=representative,
            input_size=size,
            num_calibration_images=args.num_calibration_images,
            optimize=optimize,
            overwrite=args.overwrite,
        )
    print(f"wrote {args.output}")
    if args.num_parity_images > 0:
        images, source = _parity_images(args, size or DEFAULT_TFLITE_SIZE)
        report = export_lib.check_parity(model, args.output, images)
        print(f"parity with the Keras model on {source}: {report}")


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a .keras model as a SavedModel (TF Serving), TFLite or ONNX and check parity",
    )
    parser.add_argument("--model", required=True, help="the .keras model file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="artefact format")
    add_output_argument(
        parser,
        "output folder (saved_model: a new or empty one, a numbered version folder BASE/1 "
        "for TF Serving) or file (tflite, onnx)",
        required=True,
    )
    add_boolean_argument(
        parser,
        "--overwrite",
        "replace an artefact of the same format that danet-keras wrote at --output earlier "
        "(anything else there is never replaced)",
        default=False,
    )
    parser.add_argument(
        "--outputs",
        metavar="NAME[,NAME...]",
        default=None,
        help="SavedModel: what both signatures return, among class_ids, probabilities and "
        "logits (default: all three). class_ids alone keeps a REST response of a 1024x2048 "
        "frame at a few MB instead of hundreds",
    )
    parser.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default=None,
        help="TFLite quantization (default: float32)",
    )
    add_size_argument(
        parser,
        "--input-size",
        "static input size (TFLite: default 512x512; SavedModel/ONNX: default any size)",
    )
    add_size_argument(
        parser,
        "--max-image-size",
        "SavedModel: both signatures refuse larger images, image bytes before decoding "
        "(default: 4096x4096; none: no limit)",
        optional=True,
    )
    parser.add_argument(
        "--max-batch-size",
        metavar="N",
        default=None,
        help="SavedModel: both signatures refuse a request of more than N images (default: 16)",
    )
    parser.add_argument(
        "--max-request-pixels",
        metavar="N",
        default=None,
        help="SavedModel: both signatures refuse a request whose images hold more than N pixels "
        "in all (height x width summed over the batch; image bytes are checked from their "
        "headers before decoding). Default: 2097152 (1024 x 2048)",
    )
    parser.add_argument(
        "--representative-data",
        metavar="DIR",
        default=None,
        help="directory of training images to calibrate int8",
    )
    parser.add_argument("--num-calibration-images", type=int, default=100)
    add_boolean_argument(
        parser,
        "--optimize",
        "export the inference graph (default: BatchNorm folded into the convolutions; "
        "int8: attention kept in float32); --no-optimize exports the model as it is",
        default=True,
    )
    parser.add_argument(
        "--sliced-convs",
        choices=["auto", "off"],
        default="auto",
        help="SavedModel: 'auto' runs large convolutions cut in filter slices or row bands "
        "where that was measured faster on this machine (measured once, cached); the export keeps "
        "this machine's choice, so use 'off' when the server's CPU is of another kind",
    )
    parser.add_argument(
        "--dtype-policy",
        choices=["mixed_bfloat16"],
        default=None,
        help="SavedModel: compute in bfloat16 (float32 outputs); default float32, also for a "
        "model trained under a mixed precision policy",
    )
    parser.add_argument(
        "--parity-images",
        metavar="DIR",
        default=None,
        help="images for the parity report (default: synthetic images)",
    )
    parser.add_argument(
        "--num-parity-images", type=int, default=4, help="images in the parity report; 0 skips it"
    )
    parser.set_defaults(func=export)
