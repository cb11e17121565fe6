"""Datasets, the `tf.data` input pipeline and the synthetic demo city.

split = danet_keras.data.load_dataset("cityscapes", "/data/cityscapes", "train")
train = danet_keras.data.train_pipeline(split, crop_size=(512, 1024), batch_size=8)
val = danet_keras.data.eval_pipeline(load_dataset("cityscapes", root, "val"))
# batches: images float32 (B, H, W, 3) in [0, 255], labels int32 (B, H, W), 255 = ignore

danet_keras.data.make_demo_city("/tmp/city")   # offline data in the Cityscapes layout
danet_keras.data.DATASETS["cityscapes"].class_names / .palette / .num_classes
"""

from danet_keras.data.ade20k import ade20k_dataset
from danet_keras.data.augment import augment_for_training, resize_short_side
from danet_keras.data.cityscapes import cityscapes_dataset
from danet_keras.data.coco_stuff import (
    coco_stuff10k_dataset,
    coco_stuff164k_dataset,
    coco_stuff_dataset,
)
from danet_keras.data.context import pascal_context_dataset
from danet_keras.data.datasets import READERS, load_dataset
from danet_keras.data.demo_city import DEMO_CLASSES, make_demo_city
from danet_keras.data.folder import folder_dataset
from danet_keras.data.image_io import SkipTally
from danet_keras.data.labels import DATASETS, IGNORE_INDEX, DatasetInfo
from danet_keras.data.pipeline import eval_pipeline, train_pipeline
from danet_keras.data.split import DatasetSplit
from danet_keras.data.tfds import TFDS_DATASETS, tfds_dataset
from danet_keras.data.voc import voc_dataset

__all__ = [
    "DATASETS",
    "DEMO_CLASSES",
    "IGNORE_INDEX",
    "READERS",
    "TFDS_DATASETS",
    "DatasetInfo",
    "DatasetSplit",
    "SkipTally",
    "ade20k_dataset",
    "augment_for_training",
    "cityscapes_dataset",
    "coco_stuff10k_dataset",
    "coco_stuff164k_dataset",
    "coco_stuff_dataset",
    "eval_pipeline",
    "folder_dataset",
    "load_dataset",
    "make_demo_city",
    "pascal_context_dataset",
    "resize_short_side",
    "tfds_dataset",
    "train_pipeline",
    "voc_dataset",
]
