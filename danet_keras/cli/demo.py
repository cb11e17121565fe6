"""`danet-keras demo`: demo city, training, evaluation, pictures and export, offline on a CPU."""

from danet_keras.cli.arguments import add_boolean_argument, add_output_argument


def run(args):
    from danet_keras.apps.demo import run_demo

    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    result = run_demo(
        output_dir=args.output,
        data_dir=args.data_dir,
        quick=args.quick,
        export=args.export,
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
    add_output_argument(
        parser,
        "where everything goes (default danet_demo): the demo owns this folder, so it must "
        "be new, empty or one that the demo wrote; running the demo again redoes it there",
        default="danet_demo",
    )
    parser.add_argument(
        "--data-dir", help="the demo city (default OUTPUT/demo_city; written when absent)"
    )
    add_boolean_argument(
        parser, "--quick", "a shortened smoke test of every step (for CI)", default=False
    )
    parser.add_argument("--epochs", type=int, help="override the number of training epochs")
    add_boolean_argument(
        parser, "--export", "export a SavedModel and a TFLite model at the end", default=True
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="model.fit verbosity (default: a progress bar on a terminal, one line per epoch "
        "otherwise)",
    )
    parser.set_defaults(func=run)
