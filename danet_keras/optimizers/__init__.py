"""Optimizers and learning-rate schedules of the DANet recipe (as `keras.optimizers` has them).

    LayerwiseSGD, head_learning_rate_multipliers   PyTorch-style SGD, 10x head learning rate
    PolyDecay, PolyLengthFromFit                   the poly schedule; its length set by `fit`
    paper_optimizer                                the paper's optimizer for a DANet

Below the models in the layers: `DANet.compile()` builds its default optimizer here.
"""

from typing import TYPE_CHECKING

from danet_keras.utils.lazy import lazy_attributes

_EXPORTS = {
    "LayerwiseSGD": "danet_keras.optimizers.layerwise_sgd",
    "PolyDecay": "danet_keras.optimizers.schedules",
    "PolyLengthFromFit": "danet_keras.optimizers.schedules",
    "head_learning_rate_multipliers": "danet_keras.optimizers.layerwise_sgd",
    "paper_optimizer": "danet_keras.optimizers.recipe",
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
    from danet_keras.optimizers.layerwise_sgd import (  # noqa: F401
        LayerwiseSGD,
        head_learning_rate_multipliers,
    )
    from danet_keras.optimizers.recipe import paper_optimizer  # noqa: F401
    from danet_keras.optimizers.schedules import PolyDecay, PolyLengthFromFit  # noqa: F401
