"""danet-keras: DANet (Dual Attention Network for Scene Segmentation) in Keras 3.

Public API:

    danet_keras.DANet                      the model
    danet_keras.layers                     PositionAttention, ChannelAttention, ...
    danet_keras.backbones                  DilatedResNet
"""

from danet_keras import backbones, layers, models
from danet_keras import export
from danet_keras import convert
from danet_keras import data, visualize
from danet_keras import metrics, training
from danet_keras.evaluation import evaluate
from danet_keras.training.train import train
from danet_keras.backbones import DilatedResNet
from danet_keras.layers import ChannelAttention, PositionAttention
from danet_keras.models import DANet
from danet_keras.version import __version__

__all__ = [
    "ChannelAttention",
    "DANet",
    "DilatedResNet",
    "PositionAttention",
    "__version__",
    "backbones",
    "layers",
    "models",
]
