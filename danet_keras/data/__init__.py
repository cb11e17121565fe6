"""Datasets, the `tf.data` input pipeline and the synthetic demo city.

split = danet_keras.data.load_dataset("cityscapes", "/data/cityscapes", "train")
train = danet_keras.data.train_pipeline(split, crop_size=(512, 1024), batch_size=8)
val = danet_keras.data.eval_pipeline(load_dataset("cityscapes", root, "val"))
# batches: images float32 (B, H, W, 3) in [0, 255], labels int32 (B, H, W), 255 = ignore

danet_keras.data.make_demo_city("/tmp/city")   # offline data in the Cityscapes layout
danet_keras.data.dataset_info("cityscapes").class_names / .palette / .num_classes
danet_keras.data.registry.DATASET_REGISTRY   # every dataset name: classes, reader, TFDS, recipe
"""

from typing import TYPE_CHECKING

from danet_keras.utils.lazy import lazy_attributes

# Lazy, so that the dataset registry (`data.registry`, no NumPy or TensorFlow) imports alone:
# the command line lists its names in `--help`.
_EXPORTS = {
    "ade20k_dataset": "danet_keras.data.ade20k",
    "augment_for_training": "danet_keras.data.augment",
    "cityscapes_dataset": "danet_keras.data.cityscapes",
    "coco_stuff10k_dataset": "danet_keras.data.coco_stuff",
    "coco_stuff164k_dataset": "danet_keras.data.coco_stuff",
    "coco_stuff_dataset": "danet_keras.data.coco_stuff",
    "DatasetInfo": "danet_keras.data.classes",
    "DATASETS": "danet_keras.data.classes",
    "DatasetSplit": "danet_keras.data.split",
    "DEMO_CLASSES": "danet_keras.data.demo_city",
    "eval_pipeline": "danet_keras.data.pipeline",
    "folder_dataset": "danet_keras.data.folder",
    "IGNORE_INDEX": "danet_keras.data.registry",
    "load_dataset": "danet_keras.data.datasets",
    "make_demo_city": "danet_keras.data.demo_city",
    "pascal_context_dataset": "danet_keras.data.context",
    "READERS": "danet_keras.data.datasets",
    "resize_short_side": "danet_keras.data.augment",
    "SkipTally": "danet_keras.data.problems",
    "tfds_dataset": "danet_keras.data.tfds",
    "TFDS_DATASETS": "danet_keras.data.tfds",
    "train_pipeline": "danet_keras.data.pipeline",
    "voc_dataset": "danet_keras.data.voc",
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
    from danet_keras.data.ade20k import (  # noqa: F401
        ade20k_dataset,
    )
    from danet_keras.data.augment import (  # noqa: F401
        augment_for_training,
        resize_short_side,
    )
    from danet_keras.data.cityscapes import (  # noqa: F401
        cityscapes_dataset,
    )
    from danet_keras.data.classes import (  # noqa: F401
        DATASETS,
        DatasetInfo,
    )
    from danet_keras.data.coco_stuff import (  # noqa: F401
        coco_stuff10k_dataset,
        coco_stuff164k_dataset,
        coco_stuff_dataset,
    )
    from danet_keras.data.context import (  # noqa: F401
        pascal_context_dataset,
    )
    from danet_keras.data.datasets import (  # noqa: F401
        READERS,
        load_dataset,
    )
    from danet_keras.data.demo_city import (  # noqa: F401
        DEMO_CLASSES,
        make_demo_city,
    )
    from danet_keras.data.folder import (  # noqa: F401
        folder_dataset,
    )
    from danet_keras.data.pipeline import (  # noqa: F401
        eval_pipeline,
        train_pipeline,
    )
    from danet_keras.data.problems import (  # noqa: F401
        SkipTally,
    )
    from danet_keras.data.registry import (  # noqa: F401
        IGNORE_INDEX,
    )
    from danet_keras.data.split import (  # noqa: F401
        DatasetSplit,
    )
    from danet_keras.data.tfds import (  # noqa: F401
        TFDS_DATASETS,
        tfds_dataset,
    )
    from danet_keras.data.voc import (  # noqa: F401
        voc_dataset,
    )
