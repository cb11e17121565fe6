"""`danet-keras benchmark`: forward latency of a DANet configuration on this machine."""

from danet_keras.cli.arguments import parse_size


def run(args):
    import keras

    from danet_keras.benchmark import forward_latency
    from danet_keras.models.danet import DANet

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    size = parse_size(args.size)
    model = DANet(
        num_classes=args.num_classes,
        backbone=args.backbone,
        output_stride=args.output_stride,
        attention_block_size=args.attention_block_size,
    )
    result = forward_latency(
        model, size, batch_size=args.batch_size, repeats=args.repeats, jit_compile=args.xla
    )
    print(
        "| backbone | image | batch | XLA | precision | min (s) | median (s) | images/s "
        "| peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.backbone} | {size[0]}x{size[1]} | {args.batch_size} | {args.xla} | "
        f"{args.mixed_precision or 'float32'} | {result['min_s']:.3f} | {result['median_s']:.3f} | "
        f"{result['images_per_s']:.2f} | {result['peak_rss_mb']:.0f} |"
    )


def register(subparsers):
    parser = subparsers.add_parser("benchmark", help="time a DANet forward pass on this machine")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", default="512x512", help="image size HxW (default 512x512)")
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attention-block-size", type=int, default=None)
    parser.add_argument("--xla", action="store_true", help="compile with XLA (jit_compile)")
    parser.add_argument(
        "--mixed-precision", choices=["mixed_float16", "mixed_bfloat16"], default=None
    )
    parser.set_defaults(func=run)
