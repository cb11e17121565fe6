"""`danet-keras predict`: label PNGs, overlays and attention maps for image files."""

from danet_keras.cli.arguments import add_boolean_argument, add_output_argument, add_size_argument


def predict(args):
    if args.stride is not None and args.crop_size is None:
        raise ValueError("--stride needs --crop-size (sliding-window inference).")
    if args.short_side is not None and args.short_side < 1:
        raise ValueError(f"--short-side takes a positive number of pixels, got {args.short_side}.")
    from danet_keras.apps.predict import predict_files

    options = {} if args.xnnpack else {"use_xnnpack": False}
    sliding_window = None if args.crop_size is None else (args.crop_size, args.stride)
    written = predict_files(
        args.model,
        args.inputs,
        args.output,
        overlay=args.overlay,
        attention_points=[tuple(point) for point in args.attention_point or ()],
        sliding_window=sliding_window,
        short_side=args.short_side,
        palette=args.palette,
        optimize=args.optimize,
        overwrite=args.overwrite,
        **options,
    )
    print(f"wrote {len(written)} files to {args.output}")


def register(subparsers):
    parser = subparsers.add_parser(
        "predict", help="segment images with a .keras, SavedModel, .tflite or .onnx model"
    )
    parser.add_argument(
        "--model", required=True, help=".keras file, SavedModel directory, .tflite or .onnx file"
    )
    parser.add_argument("inputs", metavar="IMAGE_OR_DIR", help="an image or a directory of images")
    add_output_argument(
        parser,
        "output folder (not the current folder, nor one that holds the inputs); each image "
        "NAME.EXT gives NAME.EXT_labels.png at the image's own size",
        required=True,
    )
    parser.add_argument(
        "--short-side",
        type=int,
        metavar="N",
        default=None,
        help="run the model on each image resized so that its shorter side is N pixels (a "
        "phone photo at full resolution is slow and far from the training scale); the labels "
        "come back at the image's own size",
    )
    add_boolean_argument(
        parser,
        "--overwrite",
        "replace outputs that danet-keras wrote earlier (other files are never replaced)",
        default=False,
    )
    add_boolean_argument(parser, "--overlay", "also write colour overlays", default=False)
    parser.add_argument(
        "--attention-point",
        nargs=2,
        type=int,
        action="append",
        metavar=("Y", "X"),
        help="write the position-attention map of this pixel (repeatable; .keras models only)",
    )
    parser.add_argument(
        "--palette",
        default=None,
        help="dataset whose class colours to use instead of the model's own (e.g. cityscapes)",
    )
    add_size_argument(
        parser, "--crop-size", "sliding-window inference with crops of this size, in pixels"
    )
    add_size_argument(parser, "--stride", "sliding-window stride (default 2/3 of the crop)")
    add_boolean_argument(
        parser,
        "--xnnpack",
        "TFLite: run the XNNPACK delegate (default); --no-xnnpack runs the builtin kernels",
        default=True,
    )
    add_boolean_argument(
        parser,
        "--optimize",
        ".keras models: run the inference graph (default: BatchNorm folded into the "
        "convolutions: the same outputs, fewer operations); --no-optimize runs the model as it is",
        default=True,
    )
    parser.set_defaults(func=predict)
