"""`danet-keras demo`: demo city, training, evaluation, pictures and export, offline on a CPU."""


def run(args):
    from danet_keras.apps.demo import run_demo

    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    result = run_demo(
        output_dir=args.output_dir,
        data_dir=args.data_dir,
        quick=args.quick,
        export=not args.no_export,
        verbose="auto" if args.verbose is None else args.verbose,
        **overrides,
    )
    return 0 if result.mean_iou == result.mean_iou else 1  # NaN mIoU: nothing was scored


def register(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="train, evaluate and export a small DANet on a synthetic city, offline, in minutes "
        "on a CPU",
    )
    parser.add_argument(
        "--output-dir",
        default="danet_demo",
        help="where everything goes (default danet_demo): the demo owns this folder, so it must "
        "be new, empty or one that the demo wrote; running the demo again redoes it there",
    )
    parser.add_argument(
        "--data-dir", help="the demo city (default OUTPUT_DIR/demo_city; written when absent)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a shortened smoke test of every step (for CI)"
    )
    parser.add_argument("--epochs", type=int, help="override the number of training epochs")
    parser.add_argument(
        "--no-export", action="store_true", help="skip the SavedModel/TFLite export"
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="model.fit verbosity (default: a progress bar on a terminal, one line per epoch "
        "otherwise)",
    )
    parser.set_defaults(func=run)
