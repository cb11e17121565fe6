"""Training DANet: the paper's recipe on `model.fit` with `tf.distribute`.

    result = danet_keras.train({"dataset": "cityscapes", "data_dir": "/data/cityscapes"})

`DANet.compile()` gives a model the same recipe for your own `model.fit`. Its
pieces live below the models (`danet_keras.losses`, `danet_keras.optimizers`) and
are re-exported here:

    SegmentationCrossEntropy, segmentation_losses   losses (ignore index, class weights, OHEM)
    PolyDecay                                       poly learning rate with warm-up
    LayerwiseSGD, head_learning_rate_multipliers    PyTorch-style SGD, 10x head learning rate
    make_strategy                                   tf.distribute strategy by name
    BestCheckpoint, HistoryCSV, monitor_key         model.fit callbacks: the best-mIoU model
                                                    (`monitor_key(model)` names its log key),
                                                    the per-epoch log as CSV
    TimeEstimate                                    the run's remaining time, from its first
                                                    steps on this machine
"""

from typing import TYPE_CHECKING

from danet_keras.utils.lazy import lazy_attributes

_EXPORTS = {
    "BestCheckpoint": "danet_keras.training.callbacks",
    "HistoryCSV": "danet_keras.training.callbacks",
    "STRATEGIES": "danet_keras.training.strategy",
    "TRAINING_RECIPES": "danet_keras.training.config",
    "TimeEstimate": "danet_keras.training.callbacks",
    "LayerwiseSGD": "danet_keras.optimizers.layerwise_sgd",
    "PolyDecay": "danet_keras.optimizers.schedules",
    "SegmentationCrossEntropy": "danet_keras.losses",
    "TrainConfig": "danet_keras.training.config",
    "TrainResult": "danet_keras.training.trainer",
    "build_model": "danet_keras.training.trainer",
    "build_training_model": "danet_keras.training.trainer",
    "configure_logical_cpus": "danet_keras.training.strategy",
    "head_learning_rate_multipliers": "danet_keras.optimizers.layerwise_sgd",
    "make_strategy": "danet_keras.training.strategy",
    "monitor_key": "danet_keras.training.trainer",
    "resolve_config": "danet_keras.training.config",
    "segmentation_losses": "danet_keras.losses",
    "train": "danet_keras.training.trainer",
    "with_output_labels": "danet_keras.losses",
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
    from danet_keras.losses import (  # noqa: F401
        SegmentationCrossEntropy,
        segmentation_losses,
        with_output_labels,
    )
    from danet_keras.optimizers.layerwise_sgd import (  # noqa: F401
        LayerwiseSGD,
        head_learning_rate_multipliers,
    )
    from danet_keras.optimizers.schedules import PolyDecay  # noqa: F401
    from danet_keras.training.callbacks import (  # noqa: F401
        BestCheckpoint,
        HistoryCSV,
        TimeEstimate,
    )
    from danet_keras.training.config import (  # noqa: F401
        TRAINING_RECIPES,
        TrainConfig,
        resolve_config,
    )
    from danet_keras.training.strategy import (  # noqa: F401
        STRATEGIES,
        configure_logical_cpus,
        make_strategy,
    )
    from danet_keras.training.trainer import (  # noqa: F401
        TrainResult,
        build_model,
        build_training_model,
        monitor_key,
        train,
    )
