"""`danet-keras train`: the paper's recipe on `model.fit`, as `danet_keras.train(config)`."""

import json

from danet_keras.cli.arguments import (
    add_boolean_argument,
    add_class_names_argument,
    add_dataset_argument,
    add_output_argument,
    add_size_argument,
    class_names_options,
)
from danet_keras.training.strategy import STRATEGIES

# --check-files values -> the readers' `check_files`.
CHECK_FILES = {"header": True, "full": "full", "none": False}


def _loss_weight(text):
    name, _, weight = text.partition("=")
    if not name or not weight:
        raise ValueError(f"--loss-weight takes OUTPUT=WEIGHT, e.g. aux_logits=0.4; got {text!r}.")
    return name, float(weight)


def config_from_args(args):
    """The `TrainConfig` fields given on the command line (a `--config` JSON file first)."""
    fields = {}
    if args.config:
        with open(args.config) as f:
            fields.update(json.load(f))
    direct = (
        "dataset", "data_dir", "train_split", "val_split", "preset", "num_classes", "batch_size",
        "epochs", "steps_per_epoch", "learning_rate", "head_lr_multiplier", "momentum",
        "weight_decay", "poly_power", "warmup_steps", "ohem_threshold", "ohem_min_kept",
        "ignore_index", "strategy", "tpu", "validation_freq", "validation_steps",
        "val_batch_size", "seed", "mixed_precision", "sync_batchnorm", "remat", "preset_weights",
        "backup", "tensorboard", "validation",
    )  # fmt: skip
    for name in direct:
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.output is not None:
        fields["output_dir"] = args.output
    if args.crop_size is not None:
        height, width = args.crop_size
        if height != width:
            raise ValueError(f"--crop-size: training crops are square (N), got {height}x{width}.")
        fields["crop_size"] = height
    model = dict(fields.get("model", {}))
    for name in (
        "backbone", "output_stride", "multi_grid", "stem", "backbone_weights", "head_channels",
        "aux_head", "align_corners",
    ):  # fmt: skip
        if getattr(args, name) is not None:
            model[name] = getattr(args, name)
    if model:
        fields["model"] = model
    reader_options = dict(fields.get("reader_options", {}))
    if args.skip_invalid is not None:
        reader_options["skip_invalid"] = args.skip_invalid
    dataset = args.dataset or fields.get("dataset")
    reader_options.update(class_names_options(dataset, args.class_names))
    if args.check_files:
        reader_options["check_files"] = CHECK_FILES[args.check_files]
    if reader_options:
        fields["reader_options"] = reader_options
    if args.loss_weight:
        fields["loss_weights"] = dict(_loss_weight(text) for text in args.loss_weight)
    if args.class_weights:
        fields["class_weights"] = [float(w) for w in args.class_weights.split(",")]
    if args.backup_freq is not None:
        fields["backup_freq"] = "epoch" if args.backup_freq == "epoch" else int(args.backup_freq)
    return fields


def run(args):
    # TensorFlow-free `--help`: the handler imports the library.
    from danet_keras.training.config import resolve_config
    from danet_keras.training.trainer import train

    # Checked here so that bad settings fail before TensorFlow starts.
    config = resolve_config(config_from_args(args))
    result = train(config)
    print(f"outputs in {result.output_dir}")
    for tally in result.skipped.values():
        print(tally.summary())
    if result.best_checkpoint:
        print(f"best validation mIoU {result.best_mean_iou:.4f}: {result.best_checkpoint}")
    if result.stopped_on_nan:
        print("training stopped: the loss became NaN; the last good backup and checkpoint are kept")
        return 1
    print(f"final model: {result.final_model}")
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train DANet with the paper's recipe (model.fit, tf.distribute, resumable)",
        description="The dataset's training recipe gives crop, batch, learning rate and epochs "
        "(the demo city's also the model); every flag overrides.",
    )
    add = parser.add_argument
    add("--config", help="JSON file of TrainConfig fields (flags override it)")
    add_dataset_argument(
        parser, "the dataset (its recipe gives crop, batch, learning rate and epochs): %(choices)s"
    )
    add("--data-dir", help="the dataset's root directory")
    add("--train-split", help="training split name (default train)")
    add("--val-split", help="validation split name (default val)")
    add_class_names_argument(parser)
    add_boolean_argument(
        parser,
        "--skip-invalid",
        "skip damaged or inconsistent image/label files (reported) instead of stopping",
    )
    add(
        "--check-files",
        choices=tuple(CHECK_FILES),
        help="check files when the dataset is opened: header (default), full (decode every "
        "file once; cached) or none",
    )
    add(
        "--preset",
        help="a model preset (danet-keras info) or preset directory: the model's "
        "configuration, its dataset, and its weights (published ones download on first use)",
    )
    add_boolean_argument(
        parser,
        "--preset-weights",
        "start from the preset's weights (default: on); --no-preset-weights trains its "
        "configuration from fresh weights (or --backbone-weights)",
    )
    add(
        "--backbone",
        help="resnet18, resnet34, resnet50 (default), resnet101, resnet152, resnet101_v1c, ...",
    )
    add("--output-stride", type=int, choices=(8, 16, 32))
    add(
        "--num-classes",
        type=int,
        help="default: the dataset's; a --preset of another class count is fine-tuned (its "
        "classifiers start fresh)",
    )
    add("--multi-grid", type=int, nargs="+", metavar="DILATION", help="e.g. 4 8 16")
    add("--stem", choices=("standard", "deep"))
    add("--head-channels", type=int)
    add_boolean_argument(parser, "--aux-head", "add the FCN auxiliary head (loss weight 0.4)")
    add_boolean_argument(parser, "--align-corners", "official DANet upsampling convention")
    add(
        "--backbone-weights",
        help="'imagenet' or a keras.applications ResNet weights file, for a backbone in that "
        "layout (--backbone resnet50_imagenet, resnet101_imagenet, resnet152_imagenet)",
    )
    add_size_argument(parser, "--crop-size", "training crop, square (default: the recipe's)")
    add("--batch-size", type=int, help="global batch size over all replicas")
    add("--epochs", type=int)
    add("--steps-per-epoch", type=int)
    add("--learning-rate", type=float, help="base (backbone) learning rate")
    add("--head-lr-multiplier", type=float, help="head learning-rate factor (10)")
    add("--momentum", type=float)
    add("--weight-decay", type=float)
    add("--poly-power", type=float)
    add("--warmup-steps", type=int)
    add(
        "--loss-weight",
        action="append",
        metavar="OUTPUT=WEIGHT",
        help="e.g. aux_logits=0.4, position_logits=0 (repeatable)",
    )
    add("--class-weights", metavar="W0,W1,...")
    add(
        "--ohem-threshold",
        type=float,
        help="enable OHEM with this probability threshold (e.g. 0.7)",
    )
    add("--ohem-min-kept", type=int)
    add("--ignore-index", type=int)
    add_boolean_argument(
        parser, "--sync-batchnorm", "synchronized BatchNorm across replicas (default: on)"
    )
    add(
        "--strategy",
        choices=STRATEGIES,
        help="distribution strategy (default auto); TensorFlow: mirrored, multi_worker "
        "(reads TF_CONFIG), tpu; JAX: data_parallel",
    )
    add("--tpu", help="TPU name or address")
    add_boolean_argument(
        parser,
        "--mixed-precision",
        "float16 compute on GPUs (bfloat16 on TPUs and CPUs), float32 weights",
    )
    add_boolean_argument(
        parser,
        "--remat",
        "recompute the backbone's activations in the backward pass instead of keeping them: "
        "less memory for one more forward pass of the backbone (default: off)",
    )
    add_output_argument(
        parser,
        "the run's folder (default runs/danet): train owns it, so it must be new, empty or "
        "one that train wrote; running the same command again resumes the run in it",
    )
    add_boolean_argument(parser, "--backup", "back up for resuming (default: on)")
    add("--backup-freq", help="'epoch' (default) or a number of steps")
    add_boolean_argument(parser, "--tensorboard", "TensorBoard logs (default: on)")
    add_boolean_argument(parser, "--validation", "validate after each epoch (default: on)")
    add("--validation-freq", type=int)
    add("--validation-steps", type=int)
    add("--val-batch-size", type=int)
    add("--seed", type=int)
    parser.set_defaults(func=run)
