"""danet-keras: DANet (Dual Attention Network for Scene Segmentation) in Keras 3.

Public API:

    danet_keras.DANet                 the model (functional keras.Model, dict of logits)
    danet_keras.layers                PositionAttention, ChannelAttention, ResizeLike, ...
    danet_keras.backbones             DilatedResNet
    danet_keras.data                  dataset readers, tf.data pipelines, the demo city
    danet_keras.metrics               MeanIoU
    danet_keras.train / .training     model.fit with the paper's recipe
    danet_keras.evaluate              single/multi-scale, flip, sliding-window evaluation
    danet_keras.export                SavedModel, TFLite, ONNX
    danet_keras.convert               PyTorch checkpoints (official DANet, mmsegmentation)
    danet_keras.visualize             colourised label maps and overlays
"""

from danet_keras import (
    backbones,
    convert,
    data,
    export,
    layers,
    metrics,
    models,
    training,
    visualize,
)
from danet_keras.backbones import DilatedResNet
from danet_keras.evaluation import evaluate
from danet_keras.layers import ChannelAttention, PositionAttention
from danet_keras.models import DANet
from danet_keras.training.train import train
from danet_keras.version import __version__

__all__ = [
    "ChannelAttention",
    "DANet",
    "DilatedResNet",
    "PositionAttention",
    "__version__",
    "backbones",
    "convert",
    "data",
    "evaluate",
    "export",
    "layers",
    "metrics",
    "models",
    "train",
    "training",
    "visualize",
]
