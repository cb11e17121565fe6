"""`danet-keras convert`: an official DANet / mmsegmentation checkpoint -> Keras weights/model."""

from danet_keras.cli.arguments import add_boolean_argument, add_output_argument, add_size_argument

ARCH_CHOICES = ("auto", "official", "mmseg")


def _multi_grid(values):
    if values is None:
        return None
    if len(values) == 1 and values[0].lower() == "none":
        return ()
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(
            f"--multi-grid takes integers (e.g. 4 8 16) or 'none', got {values}."
        ) from None


def convert(args):
    from danet_keras.convert import convert_checkpoint, save_atomically, verify_conversion
    from danet_keras.convert.converter import (
        check_output_path,
        preset_directory,
        save_converted_preset,
    )
    from danet_keras.convert.verify import DEFAULT_VERIFY_SIZE, parity_ok
    from danet_keras.models.preset_io import PRESET_KIND
    from danet_keras.utils.output_paths import check_folder_artefact

    if not (args.output or args.preset_dir or args.preset):
        raise ValueError("Say where to write: -o FILE, --preset-dir DIR or --preset NAME.")
    # Refused outputs are refused before the checkpoint is read.
    if args.output:
        check_output_path(args.output, args.overwrite, inputs=[args.checkpoint])
    if args.preset_dir or args.preset:
        check_folder_artefact(
            preset_directory(args.preset_dir or True, args.preset),
            PRESET_KIND,
            args.overwrite,
            inputs=[args.checkpoint],
        )
    model, report, config, sources = convert_checkpoint(
        args.checkpoint,
        arch=args.arch,
        preset=args.preset,
        strict=args.strict,
        backbone=args.backbone,
        num_classes=args.num_classes,
        stem=args.stem,
        stem_width=args.stem_width,
        output_stride=args.output_stride,
        multi_grid=_multi_grid(args.multi_grid),
        align_corners=args.align_corners,
        aux_head=args.aux_head,
    )
    print(report)
    print("model configuration:")
    for key, value in config.items():
        if key in ("class_names", "palette"):
            shown = f"{len(value)} {'names' if key == 'class_names' else 'colours'}"
            if key == "class_names":
                shown += f" ({', '.join(value[:3])}, ...)"
        else:
            shown = repr(value)
        print(f"  {key:<20} {shown:<14} ({sources[key]})")
    if args.verify:
        size = args.verify_size or DEFAULT_VERIFY_SIZE
        reports = verify_conversion(model, args.checkpoint, report.arch, config, image_size=size)
        print("parity with the PyTorch reference holding the same checkpoint:")
        for name, parity in reports.items():
            print(f"  {name:<16} {parity}")
        if not all(parity_ok(parity) for parity in reports.values()):
            print("parity check failed; nothing written")
            return 1
    if args.output:
        save_atomically(model, args.output, args.overwrite)
        print(f"wrote {args.output}")
    if args.preset_dir or args.preset:
        directory = save_converted_preset(
            model,
            args.preset_dir or True,
            args.preset,
            report.arch,
            args.checkpoint,
            args.overwrite,
        )
        print(f"wrote preset {directory} (DANet.from_preset({directory!r}))")
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert an official DANet or mmsegmentation DANet PyTorch checkpoint to Keras",
        description=(
            "Convert a PyTorch DANet checkpoint (official junfu1115/DANet or mmsegmentation; .pth, "
            ".pth.tar, .safetensors or .npz) to Keras weights (.weights.h5) or a whole model "
            "(.keras). Depth, stem, classes and the auxiliary head are read from the checkpoint; "
            "output stride, "
            "multi-grid and align_corners cannot be, and default to the published models' settings "
            "(official: multi-grid 4 8 16, align_corners true; mmseg: no multi-grid, align_corners "
            "false, true for files named *769x769*)."
        ),
    )
    parser.add_argument("checkpoint", help="the PyTorch checkpoint file")
    add_output_argument(parser, "output file: NAME.weights.h5 or NAME.keras")
    parser.add_argument(
        "--preset-dir",
        help="write a preset directory (config.json, model.weights.h5, metadata.json) for "
        "DANet.from_preset(DIR)",
    )
    parser.add_argument(
        "--preset",
        help="the model-zoo preset this checkpoint is (danet-keras info): its settings, and "
        "without --preset-dir the preset is installed in the local cache for "
        "DANet.from_preset(NAME)",
    )
    add_boolean_argument(
        parser,
        "--overwrite",
        "replace an output file or preset that danet-keras wrote earlier (anything else at "
        "those paths is never replaced)",
        default=False,
    )
    parser.add_argument(
        "--arch", choices=ARCH_CHOICES, default="auto", help="checkpoint layout (default: auto)"
    )
    parser.add_argument(
        "--backbone", default=None, help="e.g. resnet101 (default: from the checkpoint)"
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="default: from the checkpoint"
    )
    parser.add_argument(
        "--stem", choices=("standard", "deep"), default=None, help="default: from the checkpoint"
    )
    parser.add_argument("--stem-width", type=int, default=None, help="default: from the checkpoint")
    parser.add_argument(
        "--output-stride", type=int, choices=(8, 16, 32), default=None, help="default: 8"
    )
    parser.add_argument(
        "--multi-grid",
        nargs="+",
        metavar="DILATION",
        default=None,
        help="last-stage dilations, e.g. 4 8 16, or 'none' (default: official 4 8 16, mmseg none)",
    )
    add_boolean_argument(
        parser,
        "--align-corners",
        "upsampling convention (default: official on; mmseg off, on for *769x769* files)",
    )
    add_boolean_argument(
        parser,
        "--aux-head",
        "keep mmsegmentation's auxiliary head (default: when the checkpoint has one; "
        "--no-aux-head needs --no-strict)",
    )
    add_boolean_argument(
        parser,
        "--strict",
        "fail on unmatched tensors/weights (default); --no-strict reports them instead "
        "(shape mismatches always fail)",
        default=True,
    )
    add_boolean_argument(
        parser,
        "--verify",
        "before writing, load the checkpoint strictly into the PyTorch reference DANet of the "
        "same configuration and compare its outputs with the Keras model's (needs torch); nothing "
        "is written if they differ. This checks the key layout and the conversion, not settings "
        "that are not in the weights (output stride, multi-grid, align_corners)",
        default=False,
    )
    add_size_argument(parser, "--verify-size", "image size of --verify (default: 97x129)")
    parser.set_defaults(func=convert)
