"""The poly learning-rate schedule of DANet (and most segmentation recipes)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="danet_keras")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(t) = (base - end) * (1 - t / total_steps) ** power + end, with optional warm-up.

    The official DANet code decays `base * (1 - t / T) ** 0.9` per iteration.
    With `warmup_steps > 0` the rate is further multiplied by a factor rising
    linearly from `warmup_start_factor` to 1 over the first steps
    (mmsegmentation's linear warm-up). After `total_steps` the rate stays at
    `end_learning_rate`.

    Args:
        base_learning_rate: learning rate at step 0 (after warm-up).
        total_steps: number of optimizer steps of the whole run.
        power: exponent of the decay (0.9).
        end_learning_rate: learning rate at and after `total_steps`.
        warmup_steps: number of warm-up steps (0: none).
        warmup_start_factor: factor of the rate at step 0 of the warm-up.
        name: schedule name.
    """

    def __init__(
        self,
        base_learning_rate,
        total_steps,
        power=0.9,
        end_learning_rate=0.0,
        warmup_steps=0,
        warmup_start_factor=0.1,
        name="poly_decay",
    ):
        if int(total_steps) < 1:
            raise ValueError(f"`total_steps` must be >= 1, got {total_steps!r}.")
        if not 0 <= int(warmup_steps) < int(total_steps):
            raise ValueError(
                f"`warmup_steps` must be in [0, total_steps={total_steps}), got {warmup_steps!r}."
            )
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.end_learning_rate = float(end_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step, float(self.total_steps)) / float(self.total_steps)
        decayed = (self.base_learning_rate - self.end_learning_rate) * ops.power(
            1.0 - progress, self.power
        ) + self.end_learning_rate
        if self.warmup_steps:
            ramp = ops.minimum(step / float(self.warmup_steps), 1.0)
            decayed = decayed * (self.warmup_start_factor + (1.0 - self.warmup_start_factor) * ramp)
        return decayed

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "total_steps": self.total_steps,
            "power": self.power,
            "end_learning_rate": self.end_learning_rate,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "name": self.name,
        }
