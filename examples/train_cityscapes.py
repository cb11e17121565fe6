"""
Title: DANet on Cityscapes, with the paper's recipe
Author: danet-keras contributors
Date created: 2026/12/01
Last modified: 2026/12/01
Description: DANet-ResNet-101 on Cityscapes: the paper's training and evaluation.
Accelerator: GPU
"""

"""
## Introduction

DANet (*Dual Attention Network for Scene Segmentation*, Fu et al., CVPR 2019) puts two
self-attention modules on a dilated ResNet: **position attention**, where every pixel
attends to every pixel, and **channel attention**, where every feature channel attends to
every channel. The paper's best single model is DANet-ResNet-101 with output stride 8 and
multi-grid dilations (4, 8, 16) in the last stage; on Cityscapes val it reports 79.93 mIoU
single-scale and 81.50 with multi-scale + flip inference.

This script is that setting written out step by step with danet-keras:

- the data: Cityscapes fine, 2,975 training and 500 validation images of 1024x2048;
- the model: `danet_resnet101_cityscapes` (ResNet-101, output stride 8, multi-grid
  (4, 8, 16), standard stem, `align_corners=True`) on an ImageNet-pretrained backbone
  (keras.applications' weights, so its block layout: `resnet101_imagenet`);
- the recipe: SGD (momentum 0.9, weight decay 1e-4), poly learning rate (power 0.9) from
  0.01 with 10x on the head, batch 8, random scale 0.75-2.0, flip, 768x768 crops,
  240 epochs, synchronized BatchNorm, one cross-entropy per output (fused, position,
  channel);
- evaluation: sliding 768x768 windows over the full 1024x2048 images, single scale and the
  paper's eight scales with flipping.

Run it on a machine with the data and GPUs (the paper used 4; 240 epochs on one GPU take
days). It resumes from its last backup when run again after an interruption.

```
python examples/train_cityscapes.py --data-dir /data/cityscapes --output runs/cityscapes
python examples/train_cityscapes.py --smoke      # a few steps on the demo city (CI)
```

Each section below is a function and `main` runs them in order, so the script also imports
(`import train_cityscapes`) and runs as a notebook (which takes the defaults of
`parse_args`: set `--data-dir` there, or call `main(parse_args([...]))`).

The numbers above are the paper's. This script has not been run to the end here: the
project's machines have neither Cityscapes nor a GPU; CI runs `--smoke` only.
"""

"""
## Setup
"""

import argparse
import os
import sys

import keras

import danet_keras
from danet_keras.attention_maps import class_points
from danet_keras.data import DATASETS, eval_pipeline, load_dataset, train_pipeline
from danet_keras.demo import demo_training_config
from danet_keras.inference import PAPER_SCALES
from danet_keras.visualize import plot_overlays, plot_position_attention, save_figure


def parse_args(argv=None):
    """The script's settings: `argv` (default: the command line), else the defaults."""
    parser = argparse.ArgumentParser(description="DANet on Cityscapes with the paper's recipe.")
    parser.add_argument("--data-dir", help="Cityscapes root (leftImg8bit/, gtFine/)")
    parser.add_argument("-o", "--output", default="runs/danet_cityscapes")
    parser.add_argument("--epochs", type=int, default=240)
    parser.add_argument(
        "--strategy", default="auto", help="auto, one_device, mirrored, multi_worker or tpu"
    )
    parser.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="float16 compute on GPUs",
    )
    parser.add_argument(
        "--backbone-weights",
        default="imagenet",
        help="'imagenet' (keras.applications' ResNet-101, downloaded once), a weights file of "
        "it, or 'none'",
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

`danet_keras.train` takes a `TrainConfig`. The preset names the model (its configuration:
the run trains it from the backbone weights, not from the released weights), and the
dataset recipe (`danet_keras.training.TRAINING_RECIPES["cityscapes"]`) gives crop 768,
batch 8, learning rate 0.01 and 240 epochs; what the recipe leaves open is set here. With
`--smoke` the same script trains a tiny DANet on the demo city for two steps instead.
"""


def training_config(args):
    """The resolved `TrainConfig`, and the sliding-window crop of the evaluation."""
    backbone_weights = None if args.backbone_weights == "none" else args.backbone_weights
    config = {
        "preset": "danet_resnet101_cityscapes",
        "preset_weights": False,
        "dataset": "cityscapes",
        "data_dir": args.data_dir,
        # keras.applications' weights fit its block layout only.
        "model": {"backbone": "resnet101_imagenet", "backbone_weights": backbone_weights}
        if backbone_weights
        else {},
        "epochs": args.epochs,
        # The official code scales the short side by 0.75-2.0 of its 1024 pixels.
        "data_options": {"scale_range": (0.75, 2.0)},
        "strategy": args.strategy,
        "mixed_precision": args.mixed_precision,
        # The training run owns its own folder (it resumes there); the figures go beside it.
        "output_dir": os.path.join(args.output, "training"),
    }
    crop_size = 768
    if args.smoke:
        config = dict(
            demo_training_config(os.path.join(args.output, "demo_city"), quick=True),
            output_dir=os.path.join(args.output, "training"),
            tensorboard=False,
        )
        crop_size = 64
    config = danet_keras.training.resolve_config(config)
    print(config.to_json())
    return config, crop_size


"""
## The data

The reader turns Cityscapes label ids into the 19 train ids (others become 255, ignored).
The training pipeline scales, crops, flips and jitters colours; here are a few of its
crops with their labels.
"""


def load_splits(config, output):
    """The training and validation splits; writes `training_crops.png`."""
    train_split = load_dataset(config.dataset, config.data_dir, "train")
    val_split = load_dataset(config.dataset, config.data_dir, "val")
    print(f"{len(train_split)} training and {len(val_split)} validation images")
    images, labels = next(
        iter(train_pipeline(train_split, config.crop_size, 4, **config.data_options, seed=0))
    )
    os.makedirs(output, exist_ok=True)
    save_figure(
        plot_overlays(images.numpy()[:4], labels.numpy()[:4], palette="cityscapes"),
        os.path.join(output, "training_crops.png"),
    )
    return train_split, val_split


"""
## Training

`danet_keras.train` builds the model under the distribution strategy, compiles it with
the three losses, `LayerwiseSGD` and the poly schedule and `MeanIoU`, and runs
`model.fit` with a best-mIoU checkpoint, a CSV log, TensorBoard and crash-safe backups.
"""


def train_model(config):
    """The model of the best validation mIoU (the last one without validation)."""
    result = danet_keras.train(config)
    print(f"best validation mIoU during training: {result.best_mean_iou}")
    if result.best_checkpoint:
        return keras.saving.load_model(result.best_checkpoint)
    return result.model


"""
## Evaluation

During training, validation runs on whole images at single scale. The paper evaluates
with sliding 768x768 windows (stride 2/3 of the window) over the full images, once at
scale 1 and once at eight scales with flipping.
"""


def evaluate_model(model, val_split, crop_size, output, smoke=False):
    """Single-scale and multi-scale + flip mIoU, with sliding windows."""
    class_names = DATASETS["cityscapes"].class_names
    single_scale = danet_keras.evaluate(
        model,
        eval_pipeline(val_split),
        crop_size=crop_size,
        class_names=class_names,
        output_dir=os.path.join(output, "evaluation_single_scale"),
    )
    multi_scale = danet_keras.evaluate(
        model,
        eval_pipeline(val_split),
        scales=(1.0, 1.25) if smoke else PAPER_SCALES,
        flip=True,
        crop_size=crop_size,
        class_names=class_names,
        output_dir=os.path.join(output, "evaluation_multi_scale_flip"),
    )
    print(
        f"Cityscapes val mIoU: single scale {100 * single_scale.mean_iou:.2f} "
        f"(paper 79.93), multi-scale + flip {100 * multi_scale.mean_iou:.2f} (paper 81.50)"
    )


"""
## Where the position attention looks

For a few pixels of a validation image, the weights of their position attention over the
whole image (the paper's Fig. 3).
"""


def draw_position_attention(model, val_split, output):
    """Writes `position_attention.png`."""
    image, label = next(iter(eval_pipeline(val_split)))
    image = image.numpy()[0].astype("uint8")
    # A pixel deep inside a car, the road and a person, where the image has them.
    chosen = class_points(
        label.numpy()[0], ("car", "road", "person", "sky"), DATASETS["cityscapes"].class_names
    )
    points = [point for _, point in chosen][:3] or [(image.shape[0] // 2, image.shape[1] // 2)]
    save_figure(
        plot_position_attention(model, image, points, palette="cityscapes"),
        os.path.join(output, "position_attention.png"),
    )


"""
## Export

A SavedModel for TF Serving, in version folder 1 of the model's base folder: `docker run
-p 8501:8501 -v $PWD/OUTPUT/danet:/models/danet -e MODEL_NAME=danet tensorflow/serving`
serves it. `serving_default` takes uint8 images of any size and returns class ids,
probabilities and logits.
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
    config, crop_size = training_config(args)
    _, val_split = load_splits(config, args.output)
    model = train_model(config)
    evaluate_model(model, val_split, crop_size, args.output, smoke=args.smoke)
    draw_position_attention(model, val_split, args.output)
    export_model(model, args.output)


if __name__ == "__main__":
    # A notebook made from this script runs this cell with the kernel's own command line:
    # there it takes the defaults of `parse_args`.
    main(parse_args([] if "ipykernel" in sys.modules else None))
