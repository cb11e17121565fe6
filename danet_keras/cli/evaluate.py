"""`danet-keras evaluate`: mIoU of a saved model (single/multi-scale, flip, sliding window)."""

from danet_keras.cli.arguments import (
    add_boolean_argument,
    add_class_names_argument,
    add_dataset_argument,
    add_output_argument,
    add_size_argument,
    class_names_options,
)


def _scales(args):
    from danet_keras.inference import PAPER_SCALES  # TensorFlow-free `--help`

    if args.multi_scale:
        if args.scales:
            raise ValueError("--multi-scale (the paper's scales) and --scales contradict.")
        return PAPER_SCALES
    return tuple(args.scales) if args.scales else (1.0,)


def run(args):
    if args.stride is not None and args.crop_size is None:
        raise ValueError("--stride needs --crop-size (sliding-window evaluation).")
    # TensorFlow-free `--help`: the handler imports the library.
    from danet_keras.apps.evaluation import check_evaluation_output, evaluate
    from danet_keras.data import eval_pipeline, load_dataset
    from danet_keras.models.loading import load_keras_model

    # Before any image is read: the reports' folder may not hold the inputs or others' files.
    check_evaluation_output(args.output, args.overwrite, inputs=[args.model, args.data_dir])
    reader_options = class_names_options(args.dataset, args.class_names)
    split = load_dataset(args.dataset, args.data_dir, args.split, **reader_options)
    if len(split) == 0:
        raise FileNotFoundError(f"No images in {args.data_dir} ({args.dataset}, {args.split}).")
    model = load_keras_model(args.model)
    if getattr(model, "num_classes", split.num_classes) != split.num_classes:
        raise ValueError(
            f"The model predicts {model.num_classes} classes but {args.dataset} has "
            f"{split.num_classes}."
        )
    dataset = eval_pipeline(split, batch_size=args.batch_size, short_side=args.short_side)
    result = evaluate(
        model,
        dataset,
        num_classes=split.num_classes,
        scales=_scales(args),
        flip=args.flip,
        crop_size=args.crop_size,
        stride=args.stride,
        # The model's names, as it predicts them; the dataset's for a model without.
        class_names=getattr(model, "class_names", None) or split.info.class_names,
        steps=args.steps,
        output_dir=args.output,
        overwrite=args.overwrite,
    )
    print(f"mIoU {100 * result.mean_iou:.2f} on {result.num_images} images")


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="mIoU of a .keras model on a dataset split (multi-scale, flip, sliding window)",
        description="Prints the per-class IoU table and writes metrics.json, per_class_iou.csv and "
        "confusion_matrix.png to --output. Labels are scored at their full resolution.",
    )
    parser.add_argument(
        "--model", required=True, help="a .keras model (e.g. best.keras from training)"
    )
    add_dataset_argument(parser, "the dataset: %(choices)s", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="val")
    add_class_names_argument(parser)
    parser.add_argument(
        "--scales", type=float, nargs="+", metavar="SCALE", help="e.g. 0.75 1.0 1.25"
    )
    add_boolean_argument(
        parser, "--multi-scale", "the paper's scales 0.5 ... 2.2 (use with --flip)", default=False
    )
    add_boolean_argument(parser, "--flip", "add horizontally flipped inference", default=False)
    add_size_argument(
        parser, "--crop-size", "sliding-window crop, e.g. 768 (official Cityscapes) or 512x1024"
    )
    add_size_argument(parser, "--stride", "sliding-window stride (default 2/3 of the crop)")
    parser.add_argument(
        "--short-side", type=int, help="resize images (and labels) to this short side first"
    )
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, help="evaluate only this many batches")
    add_output_argument(
        parser,
        "folder of the reports (default ./evaluation; not the current folder)",
        default="evaluation",
    )
    add_boolean_argument(
        parser,
        "--overwrite",
        "replace reports that danet-keras wrote in --output earlier",
        default=False,
    )
    parser.set_defaults(func=run)
