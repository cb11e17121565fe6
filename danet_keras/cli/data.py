"""`danet-keras make-demo-data`: write the synthetic demo city (Cityscapes layout)."""

from danet_keras.cli.arguments import add_size_argument


def run(args):
    from danet_keras.data.demo_city import make_demo_city

    written = make_demo_city(
        args.directory,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
    )
    counts = ", ".join(f"{len(pairs)} {split}" for split, pairs in written.items())
    size = "x".join(str(side) for side in args.size)
    print(f"wrote {counts} scenes ({size}) in Cityscapes layout to {args.directory}")


def register(subparsers):
    parser = subparsers.add_parser(
        "make-demo-data",
        help="write a synthetic street-scene dataset in the Cityscapes layout (offline demo)",
    )
    parser.add_argument(
        "directory",
        help="output folder: new, empty, or a demo city written earlier (rewritten in place)",
    )
    parser.add_argument("--num-train", type=int, default=200, help="training scenes (default 200)")
    parser.add_argument("--num-val", type=int, default=40, help="validation scenes (default 40)")
    add_size_argument(
        parser, "--size", "the size of every image (default 256x512)", default=(256, 512)
    )
    parser.add_argument("--seed", type=int, default=0, help="the files depend only on the seed")
    parser.set_defaults(func=run)
