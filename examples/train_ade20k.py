"""
Title: DANet on ADE20K, with mmsegmentation's recipe
Author: danet-keras contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: DANet R-101-D8 on ADE20K, trained and evaluated as mmsegmentation does.
Accelerator: GPU
"""

"""
## Introduction

The DANet paper (Fu et al., CVPR 2019) reports Cityscapes, PASCAL Context, COCO-Stuff
and PASCAL VOC, not ADE20K. The reference for ADE20K is mmsegmentation's DANet, whose
R-101-D8 model reaches 43.64 mIoU on the validation set after 80k iterations (45.19
multi-scale + flip). This script trains that model with danet-keras:

- the data: ADE20K SceneParsing (ADEChallengeData2016), 20,210 training and 2,000
  validation images, 150 classes ("other" is ignored);
- the model: `danet_resnet101_d8_ade20k_mmseg`: ResNet-101 V1c (deep stem of width 32),
  output stride 8, the dual-attention head plus an FCN auxiliary head on stage 3 (loss
  weight 0.4), `align_corners=False`, on an ImageNet-pretrained backbone;
- the recipe: SGD (momentum 0.9, weight decay 5e-4), poly learning rate (power 0.9) from
  0.01, the same for backbone and head (mmsegmentation has no 10x head rate), batch 16,
  synchronized BatchNorm, random scale 0.5-2.0, flip, photometric jitter, 512x512 crops,
  80k iterations (64 epochs of 20,210 images);
- evaluation: whole images at their own size, and at mmsegmentation's six scales
  (0.5-1.75) with flipping.

Three differences from mmsegmentation: its pipeline first resizes every image to fit
2048x512 and scales that, where `train_pipeline` scales the image as it is read; its poly
schedule stops at a learning rate of 1e-4, `danet_keras.train`'s at 0; and its 80k
iterations are rounded up to whole epochs here.

```
python examples/train_ade20k.py --data-dir /data/ade20k --output runs/ade20k
python examples/train_ade20k.py --smoke      # a few steps on the demo city (CI)
```

Each section below is a function and `main` runs them in order, so the script also imports
(`import train_ade20k`) and runs as a notebook (which takes the defaults of `parse_args`).

The numbers above are mmsegmentation's. This script has not been run to the end here:
the project's machines have neither ADE20K nor a GPU; CI runs `--smoke` only.
"""

"""
## Setup
"""

import argparse
import math
import os
import sys

import keras

import danet_keras
from danet_keras.data import DATASETS, eval_pipeline, load_dataset, train_pipeline
from danet_keras.demo import demo_training_config
from danet_keras.visualize import plot_channel_attention, plot_overlays, save_figure


def parse_args(argv=None):
    """The script's settings: `argv` (default: the command line), else the defaults."""
    parser = argparse.ArgumentParser(description="DANet on ADE20K with mmsegmentation's recipe.")
    parser.add_argument("--data-dir", help="ADEChallengeData2016 or the directory holding it")
    parser.add_argument("-o", "--output", default="runs/danet_ade20k")
    parser.add_argument("--strategy", default="auto", help="auto, one_device, mirrored, ...")
    parser.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="float16 compute on GPUs",
    )
    parser.add_argument(
        "--backbone-weights",
        default="imagenet",
        help="'imagenet' (keras.applications, downloaded by Keras), a weights file, or 'none'",
    )
    parser.add_argument(
        "--smoke",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="a few steps on the demo city",
    )
    return parser.parse_args(argv)


"""
## The training configuration

80k iterations of batch 16 over 20,210 images are 63.3 epochs; 64 here. The recipe's
crop (512), batch (16) and learning rate (0.01) come from
`danet_keras.training.TRAINING_RECIPES["ade20k"]`.
"""

ITERATIONS, BATCH, TRAINING_IMAGES = 80_000, 16, 20_210


def training_config(args):
    """The resolved `TrainConfig`, and the dataset whose colours the figures use."""
    config = {
        "preset": "danet_resnet101_d8_ade20k_mmseg",
        # Trained here from the backbone weights, not from mmsegmentation's released model.
        "preset_weights": False,
        "data_dir": args.data_dir,
        "model": {
            "backbone_weights": None if args.backbone_weights == "none" else args.backbone_weights
        },
        "epochs": math.ceil(ITERATIONS * BATCH / TRAINING_IMAGES),
        "weight_decay": 5e-4,
        "head_lr_multiplier": 1.0,
        "data_options": {"scale_range": (0.5, 2.0)},
        "strategy": args.strategy,
        "mixed_precision": args.mixed_precision,
        # The training run owns its own folder (it resumes there); the figures go beside it.
        "output_dir": os.path.join(args.output, "training"),
    }
    palette = "ade20k"
    if args.smoke:
        config = dict(
            demo_training_config(os.path.join(args.output, "demo_city"), quick=True),
            output_dir=os.path.join(args.output, "training"),
            tensorboard=False,
        )
        palette = "cityscapes"  # the demo city's labels are Cityscapes train ids
    config = danet_keras.training.resolve_config(config)
    print(config.to_json())
    return config, palette


"""
## The data

ADE20K annotations hold 0 ("other") and 1..150; the reader maps 0 to 255 (ignored) and
k to k - 1. A few augmented training crops:
"""


def load_splits(config, palette, output):
    """The training and validation splits; writes `training_crops.png`."""
    train_split = load_dataset(config.dataset, config.data_dir, "train")
    val_split = load_dataset(config.dataset, config.data_dir, "val")
    print(f"{len(train_split)} training and {len(val_split)} validation images")
    os.makedirs(output, exist_ok=True)
    crops = train_pipeline(train_split, config.crop_size, 4, seed=0, **config.data_options)
    images, labels = next(iter(crops))
    save_figure(
        plot_overlays(images.numpy(), labels.numpy(), palette=palette),
        os.path.join(output, "training_crops.png"),
    )
    return train_split, val_split


"""
## Training

One call: the strategy, the model (with the auxiliary head's fourth loss), `LayerwiseSGD`
with the poly schedule and the 10x head learning rate, `MeanIoU`, and `model.fit` with
checkpoints, logs and backups (run the script again to resume).
"""


def train_model(config):
    """The model of the best validation mIoU (the last one without validation)."""
    result = danet_keras.train(config)
    if result.best_checkpoint:
        return keras.saving.load_model(result.best_checkpoint)
    return result.model


"""
## Evaluation

mmsegmentation tests ADE20K on whole images; its multi-scale test uses six scales and
flipping.
"""

MMSEG_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def evaluate_model(model, val_split, palette, smoke=False):
    """Whole-image and multi-scale + flip mIoU."""
    names = DATASETS[palette].class_names
    for name, options in {
        "whole image": {},
        "multi-scale + flip": {"scales": (1.0, 1.25) if smoke else MMSEG_SCALES, "flip": True},
    }.items():
        scores = danet_keras.evaluate(model, eval_pipeline(val_split), class_names=names, **options)
        print(f"ADE20K val mIoU, {name}: {100 * scores.mean_iou:.2f}")
    print("mmsegmentation's: 43.64 whole image, 45.19 multi-scale + flip")


"""
## What the channel attention does

The channel attention's output channels that vary most over a validation image: each
tends to respond to a few classes (the paper's Fig. 4).
"""


def draw_channel_attention(model, val_split, palette, output):
    """Writes `channel_attention.png`."""
    image, _ = next(iter(eval_pipeline(val_split)))
    save_figure(
        plot_channel_attention(model, image.numpy()[0].astype("uint8"), 4, palette=palette),
        os.path.join(output, "channel_attention.png"),
    )


"""
## Export

A SavedModel for TF Serving, in version folder 1 of the model's base folder
(`danet-keras export --format tflite` makes a TFLite model for a fixed input size).
"""


def export_model(model, output):
    """Writes the SavedModel to OUTPUT/danet/1."""
    # A rerun replaces its own earlier export (never anything else at that path).
    path = danet_keras.export.export_saved_model(
        model, os.path.join(output, "danet", "1"), overwrite=True
    )
    print(f"wrote {path}")


"""
## Everything, in order
"""


def main(args):
    config, palette = training_config(args)
    _, val_split = load_splits(config, palette, args.output)
    model = train_model(config)
    evaluate_model(model, val_split, palette, smoke=args.smoke)
    draw_channel_attention(model, val_split, palette, args.output)
    export_model(model, args.output)


if __name__ == "__main__":
    # A notebook made from this script runs this cell with the kernel's own command line:
    # there it takes the defaults of `parse_args`.
    main(parse_args([] if "ipykernel" in sys.modules else None))
