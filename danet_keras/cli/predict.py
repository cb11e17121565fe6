"""`danet-keras predict`: label PNGs, overlays and attention maps for image files."""


def _sliding_window(values):
    if not values:
        return None
    if len(values) > 2 or min(values) < 1:
        raise ValueError(f"--sliding-window takes CROP [STRIDE], positive ints, got {values}.")
    return values[0], (values[1] if len(values) == 2 else None)


def predict(args):
    from danet_keras.apps.predict import predict_files

    options = {} if args.xnnpack else {"use_xnnpack": False}
    written = predict_files(
        args.model,
        args.inputs,
        args.out,
        overlay=args.overlay,
        attention_points=[tuple(point) for point in args.attention_point or ()],
        sliding_window=_sliding_window(args.sliding_window),
        palette=args.palette,
        optimize=args.optimize,
        overwrite=args.overwrite,
        **options,
    )
    print(f"wrote {len(written)} files to {args.out}")


def register(subparsers):
    parser = subparsers.add_parser(
        "predict", help="segment images with a .keras, SavedModel, .tflite or .onnx model"
    )
    parser.add_argument(
        "--model", required=True, help=".keras file, SavedModel directory, .tflite or .onnx file"
    )
    parser.add_argument("inputs", metavar="IMAGE_OR_DIR", help="an image or a directory of images")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder (not the current folder, nor one that holds the inputs); each image "
        "NAME.EXT gives NAME.EXT_labels.png",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that danet-keras wrote earlier (other files are never replaced)",
    )
    parser.add_argument("--overlay", action="store_true", help="also write colour overlays")
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
    parser.add_argument(
        "--sliding-window",
        nargs="+",
        type=int,
        metavar="N",
        default=None,
        help="sliding-window inference: CROP [STRIDE] in pixels (default stride: 2/3 of the crop)",
    )
    parser.add_argument(
        "--no-xnnpack",
        dest="xnnpack",
        action="store_false",
        help="TFLite: run the builtin kernels instead of the XNNPACK delegate",
    )
    parser.add_argument(
        "--no-optimize",
        dest="optimize",
        action="store_false",
        help=".keras models: run the model as it is, not its inference graph (BatchNorm folded, "
        "Winograd 3x3 convolutions: the same outputs, fewer FLOPs)",
    )
    parser.set_defaults(func=predict)
