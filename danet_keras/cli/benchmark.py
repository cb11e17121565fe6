"""`danet-keras benchmark`: forward latency of a DANet configuration on this machine."""

from danet_keras.cli.arguments import add_boolean_argument, add_size_argument

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def compare_pytorch(args, size):
    """Keras (as built, and its inference graph) against the PyTorch reference, side by side."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ValueError(
            "--compare-pytorch needs PyTorch: pip install 'danet-keras[torch]' (CPU: "
            "pip install torch --index-url https://download.pytorch.org/whl/cpu)."
        )
    if args.xla:
        raise ValueError("--compare-pytorch times graph mode; drop --xla.")
    from danet_keras.apps.benchmark import compare_inference

    precision = "bfloat16" if args.dtype_policy == "mixed_bfloat16" else "float32"
    if args.dtype_policy == "mixed_float16":
        raise ValueError("--compare-pytorch compares float32 or mixed_bfloat16, not mixed_float16.")
    rows = compare_inference(
        backbone=args.backbone,
        size=size,
        batch=args.batch_size,
        precision=precision,
        num_classes=args.num_classes,
        output_stride=args.output_stride,
        repeats=args.repeats,
    )
    print(
        f"{args.backbone}, {size[0]}x{size[1]}, batch {args.batch_size}, {precision}, each side "
        "in its own process, the same weights and images; median after one warm-up call"
    )
    print(
        "| side | median (s) | vs PyTorch | peak RSS (MB) "
        "| logits vs PyTorch (max diff / range, argmax) |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        name = "PyTorch reference" if row["side"] == "torch" else f"Keras {row['variant']}"
        if "error" in row:
            print(f"| {name} | {row['error']} | | | |")
            continue
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        match = ""
        if "agreement" in row:
            match = f"{row['relative_logit_diff']:.1e} / {100 * row['agreement']:.2f}%"
        print(f"| {name} | {row['median_s']:.3f} | {ratio} | {row['peak_rss_mb']:.0f} | {match} |")


def run(args):
    size = args.size
    if args.compare_pytorch:
        return compare_pytorch(args, size)
    import keras

    from danet_keras.apps.benchmark import forward_latency
    from danet_keras.models.danet import DANet

    if args.dtype_policy != "float32":
        keras.mixed_precision.set_global_policy(args.dtype_policy)
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
        f"{args.dtype_policy} | {result['min_s']:.3f} | {result['median_s']:.3f} | "
        f"{result['images_per_s']:.2f} | {result['peak_rss_mb']:.0f} |"
    )


def register(subparsers):
    parser = subparsers.add_parser("benchmark", help="time a DANet forward pass on this machine")
    parser.add_argument("--backbone", default="resnet50")
    add_size_argument(parser, "--size", "image size (default 512x512)", default=(512, 512))
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attention-block-size", type=int, default=None)
    add_boolean_argument(parser, "--xla", "compile with XLA (jit_compile)", default=False)
    parser.add_argument(
        "--dtype-policy", choices=DTYPE_POLICIES, default="float32", help="default float32"
    )
    add_boolean_argument(
        parser,
        "--compare-pytorch",
        "also time the PyTorch reference DANet with the same weights (needs torch), each "
        "side in its own process, and the Keras model's optimize_for_inference graph",
        default=False,
    )
    parser.set_defaults(func=run)
