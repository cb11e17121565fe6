"""SGD as the DANet recipe uses it: coupled weight decay and a 10x head learning rate.

The official code trains with PyTorch's SGD and two parameter groups, the
pretrained backbone at the base learning rate and the new head at 10x. Keras'
`SGD` differs in two ways that matter for reproducing it: its weight decay is
decoupled (`w -= lr * wd * w`, no momentum), while PyTorch adds `wd * w` to
the gradient before the momentum buffer (so momentum 0.9 amplifies it ~10x);
and it has a single learning rate. `LayerwiseSGD` is PyTorch's update with a
learning-rate multiplier per variable, as a regular Keras optimizer: it works
with `model.fit`, every `tf.distribute` strategy (it only defines
`update_step`) and mixed precision (Keras wraps it in a `LossScaleOptimizer`,
which hands it unscaled gradients).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="danet_keras")
class LayerwiseSGD(keras.optimizers.Optimizer):
    """PyTorch-style SGD with per-variable learning-rate multipliers.

    For each variable w with gradient g, multiplier m and learning rate lr:

        d = g + weight_decay * w          (only for decayed variables)
        buf = momentum * buf + d
        w -= m * lr * (d + momentum * buf if nesterov else buf)

    Args:
        learning_rate: float or `LearningRateSchedule` (e.g. `PolyDecay`).
        momentum: momentum factor (0.9).
        nesterov: Nesterov momentum.
        weight_decay: L2 factor added to the gradient (PyTorch's SGD
            `weight_decay`), 1e-4 in the recipe.
        weight_decay_suffixes: a variable is decayed when its name ends with
            one of these; the default decays convolution kernels and the
            attention projections (`*_kernel`), not BatchNorm parameters,
            biases or the attention scales.
        learning_rate_multipliers: None or a dict {variable path: multiplier}
            (`variable.path`); variables not listed use 1.0. See
            `head_learning_rate_multipliers`.
        name: optimizer name.
        **kwargs: `keras.optimizers.Optimizer` arguments (clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-4,
        weight_decay_suffixes=("kernel",),
        learning_rate_multipliers=None,
        name="layerwise_sgd",
        **kwargs,
    ):
        # Keras' own (decoupled) `weight_decay` stays off; ours is coupled.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        # The schedule object (Keras keeps it privately): `DANet.fit` sets a poly schedule's
        # length through it.
        is_schedule = isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule)
        self.learning_rate_schedule = learning_rate if is_schedule else None
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1], got {momentum!r}.")
        if float(weight_decay) < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.coupled_weight_decay = float(weight_decay)
        self.weight_decay_suffixes = tuple(weight_decay_suffixes)
        self.learning_rate_multipliers = {
            str(path): float(value) for path, value in (learning_rate_multipliers or {}).items()
        }

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Python constants per variable index: they fold into the traced step.
        self._multipliers = [self.learning_rate_multipliers.get(v.path, 1.0) for v in variables]
        self._decayed = [
            self.coupled_weight_decay > 0 and v.name.endswith(self.weight_decay_suffixes)
            for v in variables
        ]
        self.momentums = (
            self.add_optimizer_variables(variables, "momentum") if self.momentum else []
        )

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        gradient = ops.cast(gradient, variable.dtype)
        if self._decayed[index]:
            gradient = gradient + ops.cast(self.coupled_weight_decay, variable.dtype) * variable
        step_size = ops.cast(learning_rate, variable.dtype) * self._multipliers[index]
        if not self.momentum:
            self.assign_sub(variable, step_size * gradient)
            return
        buffer = self.momentums[index]
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(buffer, momentum * buffer + gradient)
        direction = gradient + momentum * buffer if self.nesterov else buffer
        self.assign_sub(variable, step_size * direction)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "nesterov": self.nesterov,
                "weight_decay": self.coupled_weight_decay,
                "weight_decay_suffixes": list(self.weight_decay_suffixes),
                "learning_rate_multipliers": dict(self.learning_rate_multipliers),
            }
        )
        return config


def head_learning_rate_multipliers(model, multiplier=10.0):
    """{variable path: multiplier} for every trainable variable outside `model.backbone`.

    Args:
        model: a model with a nested `backbone` model (e.g. `DANet`).
        multiplier: learning-rate factor of the head (10 in the recipe).

    Returns:
        A dict for `LayerwiseSGD(learning_rate_multipliers=...)`.
    """
    backbone_ids = {id(v) for v in model.backbone.trainable_variables}
    head = [v for v in model.trainable_variables if id(v) not in backbone_ids]
    paths = [v.path for v in model.trainable_variables]
    if len(set(paths)) != len(paths):
        raise ValueError(
            "Variable paths of the model are not unique; multipliers cannot be keyed by path."
        )
    return {v.path: float(multiplier) for v in head}
