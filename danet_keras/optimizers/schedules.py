"""The poly learning-rate schedule of DANet (and most segmentation recipes), and its length.

A poly schedule decays over the whole run, so it needs the run's number of
optimizer steps. It is given (`PolyDecay(..., total_steps=N)`, as
`danet_keras.train` does), or left `None` and set when training starts:
`DANet.fit` adds `PolyLengthFromFit`, which sets it to the first `fit`'s
epochs x steps per epoch.
"""

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
        total_steps: number of optimizer steps of the whole run, or None
            until training sets it (`set_total_steps`; `DANet.fit` does it
            through `PolyLengthFromFit`). A schedule without a length refuses
            to give a rate.
        power: exponent of the decay (0.9).
        end_learning_rate: learning rate at and after `total_steps`.
        warmup_steps: number of warm-up steps (0: none).
        warmup_start_factor: factor of the rate at step 0 of the warm-up.
        name: schedule name.
    """

    def __init__(
        self,
        base_learning_rate,
        total_steps=None,
        power=0.9,
        end_learning_rate=0.0,
        warmup_steps=0,
        warmup_start_factor=0.1,
        name="poly_decay",
    ):
        if int(warmup_steps) < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, got {warmup_steps!r}.")
        self.base_learning_rate = float(base_learning_rate)
        self.power = float(power)
        self.end_learning_rate = float(end_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.name = name
        self.total_steps = None
        if total_steps is not None:
            self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps):
        """Sets the run's length, before the schedule's first use (it is traced as a constant).

        Args:
            total_steps: optimizer steps of the whole run, >= 1 and more than
                `warmup_steps`.
        """
        if isinstance(total_steps, bool) or int(total_steps) < 1:
            raise ValueError(f"`total_steps` must be >= 1, got {total_steps!r}.")
        if not self.warmup_steps < int(total_steps):
            raise ValueError(
                f"`warmup_steps` ({self.warmup_steps}) must be less than total_steps={total_steps}."
            )
        self.total_steps = int(total_steps)

    def __call__(self, step):
        if self.total_steps is None:
            raise ValueError(
                "The poly learning-rate schedule has no length yet: train with `fit` (it "
                "sets the length to the epochs x steps per epoch of the first fit) or pass "
                "`total_steps` (`model.compile(total_steps=N)`, `PolyDecay(..., total_steps=N)`)."
            )
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


class PolyLengthFromFit(keras.callbacks.Callback):
    """Sets a `PolyDecay` without a length to the epochs x steps per epoch of the `fit` it runs in.

    `DANet.fit` adds it when the compiled optimizer's schedule has no length;
    a schedule that has one (from an earlier `fit`, or given) is left alone, so
    one `compile` is one schedule: a later `fit` continues it.

    Args:
        schedule: the `PolyDecay` to set.
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_train_begin(self, logs=None):
        if self.schedule.total_steps is not None:
            return
        steps = self.params.get("steps")
        if not steps:
            raise ValueError(
                "The poly learning-rate schedule lasts the run's epochs x steps per epoch, and "
                "the steps per epoch of this data are unknown: pass `steps_per_epoch` to fit, "
                "or `total_steps` to compile."
            )
        self.schedule.set_total_steps(self.params["epochs"] * steps)
