"""Training DANet: the paper's recipe on `model.fit` with `tf.distribute`.

    result = danet_keras.train({"dataset": "cityscapes", "data_dir": "/data/cityscapes"})

Pieces, usable on their own with `model.compile`:

    SegmentationCrossEntropy, segmentation_losses   losses (ignore index, class weights, OHEM)
    PolyDecay                                       poly learning rate with warm-up
    LayerwiseSGD, head_learning_rate_multipliers    PyTorch-style SGD, 10x head learning rate
    make_strategy                                   tf.distribute strategy by name
"""

from danet_keras.training.config import TRAINING_PRESETS, TrainConfig, resolve_config
from danet_keras.training.losses import (
    SegmentationCrossEntropy,
    segmentation_losses,
    with_output_labels,
)
from danet_keras.training.optimizer import LayerwiseSGD, head_learning_rate_multipliers
from danet_keras.training.schedules import PolyDecay
from danet_keras.training.strategy import STRATEGIES, configure_logical_cpus, make_strategy
from danet_keras.training.train import TrainResult, build_training_model, train

__all__ = [
    "STRATEGIES",
    "TRAINING_PRESETS",
    "LayerwiseSGD",
    "PolyDecay",
    "SegmentationCrossEntropy",
    "TrainConfig",
    "TrainResult",
    "build_training_model",
    "configure_logical_cpus",
    "head_learning_rate_multipliers",
    "make_strategy",
    "resolve_config",
    "segmentation_losses",
    "train",
    "with_output_labels",
]
