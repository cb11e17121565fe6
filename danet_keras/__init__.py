"""danet-keras: DANet (Dual Attention Network for Scene Segmentation) in Keras 3.

Public API (imported on first use, so `import danet_keras` is instant):

    danet_keras.DANet                 the task model (functional keras.Model, dict of logits)
    danet_keras.DilatedResNet         the backbone model, with its presets
    danet_keras.layers                PositionAttention, ChannelAttention, ResizeLike, ...
    danet_keras.data                  dataset readers, tf.data pipelines, the demo city
    danet_keras.metrics               MeanIoU
    danet_keras.losses, .optimizers   the recipe's cross entropy, LayerwiseSGD and poly schedule
    danet_keras.train / .training     model.fit with the paper's recipe
    danet_keras.inference             sliding window, multi-scale and flip inference
    danet_keras.evaluate              mIoU over a dataset (danet_keras.apps.evaluation)
    danet_keras.export                SavedModel, TFLite, ONNX
    danet_keras.optimize_for_inference  the same model with fewer FLOPs (BN folding, Winograd)
    danet_keras.convert               PyTorch checkpoints (official DANet, mmsegmentation)
    danet_keras.visualize             coloured label maps, overlays and figures
    danet_keras.attention_maps        the position / channel attention of a model for an image
    danet_keras.predict, .demo        the user-facing jobs (danet_keras.apps)

The folders follow the layers (CONTRIBUTING.md has the map): utils < layers < data, metrics,
losses, optimizers < models < inference < export, training < convert < visualize < apps < cli.
"""

from typing import TYPE_CHECKING

from danet_keras.utils.lazy import (
    alias_modules,
    lazy_attributes,
    register_serializables_with_keras,
)
from danet_keras.version import __version__

# Public modules that live in a subpackage of their job: `danet_keras.predict` is
# `danet_keras.apps.predict`, also for `import danet_keras.predict` and `from ... import`.
PUBLIC_MODULES = {
    "demo": "danet_keras.apps.demo",
    "evaluation": "danet_keras.apps.evaluation",
    "optimize": "danet_keras.inference.optimize",
    "attention_maps": "danet_keras.inference.attention_maps",
    "benchmark": "danet_keras.apps.benchmark",
    "predict": "danet_keras.apps.predict",
}
_EXPORTS = {
    "ChannelAttention": "danet_keras.layers.attention",
    "DANet": "danet_keras.models.danet",
    "DilatedResNet": "danet_keras.models.dilated_resnet",
    "PositionAttention": "danet_keras.layers.attention",
    "evaluate": "danet_keras.apps.evaluation",
    "optimize_for_inference": PUBLIC_MODULES["optimize"],
    "train": "danet_keras.training.trainer",
    **{name: f"{module}:" for name, module in PUBLIC_MODULES.items()},
    **{
        name: f"danet_keras.{name}:"
        for name in (
            "backbones",
            "convert",
            "data",
            "export",
            "inference",
            "layers",
            "losses",
            "metrics",
            "models",
            "optimizers",
            "training",
            "visualize",
        )
    },
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS) + ["__version__"]
alias_modules(
    {
        f"{__name__}.{name}": module
        for name, module in PUBLIC_MODULES.items()
        if module != f"{__name__}.{name}"
    }
)
# `.keras` files holding a DANet load with plain `keras.saving.load_model`.
register_serializables_with_keras()

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
    from danet_keras import (  # noqa: F401
        backbones,
        convert,
        data,
        export,
        inference,
        layers,
        losses,
        metrics,
        models,
        optimizers,
        training,
        visualize,
    )
    from danet_keras.apps import benchmark, demo, evaluation, predict  # noqa: F401
    from danet_keras.apps.evaluation import evaluate  # noqa: F401
    from danet_keras.inference import attention_maps, optimize  # noqa: F401
    from danet_keras.inference.optimize import optimize_for_inference  # noqa: F401
    from danet_keras.layers.attention import ChannelAttention, PositionAttention  # noqa: F401
    from danet_keras.models.danet import DANet  # noqa: F401
    from danet_keras.models.dilated_resnet import DilatedResNet  # noqa: F401
    from danet_keras.training.trainer import train  # noqa: F401
