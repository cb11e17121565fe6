"""Rematerialisation that changes no state: the recomputation discards its variable updates."""

import keras


def rematerialized(function, training):
    """`function(x, training=training)`, recomputed in the backward pass instead of kept.

    `keras.remat` alone runs the function a second time to compute its
    gradient. On TensorFlow and PyTorch that second run executes the
    function's variable updates again, so every BatchNormalization would move
    its statistics twice per training step (m <- m * momentum + mean * (1 -
    momentum), applied twice). The second run here happens in a
    `keras.StatelessScope`, which records the updates and drops them: the
    model's state after a step is that of one forward pass.

    Args:
        function: callable `function(x, training=...)`, e.g. a `keras.Model`
            made of a few layers.
        training: the training flag to call it with (the recomputation runs
            outside the caller's call context, so it is passed explicitly).

    Returns:
        A callable of one tensor, made anew for each forward pass (it counts
        the function's calls).
    """
    calls = []

    def run(x):
        if calls:
            with keras.StatelessScope():
                return function(x, training=training)
        calls.append(None)
        return function(x, training=training)

    return keras.remat(run)
