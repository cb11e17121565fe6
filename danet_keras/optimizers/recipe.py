"""The paper's optimizer: SGD with momentum, coupled weight decay, a 10x head and a poly decay.

`DANet.compile()` uses `paper_optimizer` with its defaults, and
`danet_keras.train` (so `danet-keras train` too) with a run's settings; both
take their numbers from `danet_keras.optimizers.paper_settings`.
"""

from danet_keras.optimizers.layerwise_sgd import LayerwiseSGD, head_learning_rate_multipliers
from danet_keras.optimizers.paper_settings import (
    BASE_LEARNING_RATE,
    HEAD_LR_MULTIPLIER,
    MOMENTUM,
    POLY_POWER,
    WEIGHT_DECAY,
)
from danet_keras.optimizers.schedules import PolyDecay


def paper_optimizer(
    model,
    learning_rate=BASE_LEARNING_RATE,
    total_steps=None,
    *,
    head_lr_multiplier=HEAD_LR_MULTIPLIER,
    momentum=MOMENTUM,
    weight_decay=WEIGHT_DECAY,
    poly_power=POLY_POWER,
    warmup_steps=0,
):
    """`LayerwiseSGD` with the poly schedule and the head's larger learning rate, for `model`.

    Args:
        model: a built model with a nested `backbone` (a `DANet`): every
            variable outside it learns `head_lr_multiplier` times faster.
        learning_rate: the base (backbone) learning rate.
        total_steps: optimizer steps of the whole run (the poly schedule's
            length), or None: `DANet.fit` sets it to the first `fit`'s epochs x
            steps per epoch (`PolyLengthFromFit`).
        head_lr_multiplier: learning-rate factor of the head.
        momentum: SGD momentum.
        weight_decay: PyTorch-style (coupled) L2 factor on kernels.
        poly_power: exponent of the poly decay.
        warmup_steps: linear warm-up steps.

    Returns:
        A `LayerwiseSGD`.
    """
    schedule = PolyDecay(learning_rate, total_steps, power=poly_power, warmup_steps=warmup_steps)
    return LayerwiseSGD(
        schedule,
        momentum=momentum,
        weight_decay=weight_decay,
        learning_rate_multipliers=head_learning_rate_multipliers(model, head_lr_multiplier),
    )


def schedule_awaiting_length(optimizer):
    """The `PolyDecay` of `optimizer` that has no length yet, or None.

    Args:
        optimizer: a compiled model's optimizer (a `LossScaleOptimizer` under
            mixed precision is looked through).
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = getattr(optimizer, "learning_rate_schedule", None)
    if isinstance(schedule, PolyDecay) and schedule.total_steps is None:
        return schedule
    return None
