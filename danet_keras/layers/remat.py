"""Rematerialisation that changes no state: the recomputation discards its variable updates."""

import keras


def rematerialized(function, training):
    """`function(x, training=training)`, recomputed in the backward pass instead of kept.

    `keras.remat` alone breaks layers with state. On TensorFlow and PyTorch it
    runs the function a second time for the gradient, and that run executes
    the function's variable updates again: every BatchNormalization would move
    its statistics twice per training step (m <- m * momentum + mean * (1 -
    momentum), applied twice). On JAX it traces the function once, and an
    update recorded inside the trace would escape it. So the function runs
    pure here, in a `keras.StatelessScope` that reads the caller's current
    variable values and collects the new values of its non-trainable
    variables; they are returned as outputs and assigned after the
    rematerialised call, once, as one forward pass would.

    Args:
        function: a `keras.Layer` called as `function(x, training=...)`, e.g.
            a `keras.Model` made of a few layers.
        training: the training flag to call it with (the recomputation runs
            outside the caller's call context, so it is passed explicitly).

    Returns:
        A callable of one tensor.
    """

    def pure(x):
        # The values the caller sees now: under JAX's stateless training step
        # these are its traced values, which gradients must reach.
        current = [(variable, variable.value) for variable in function.variables]
        with keras.StatelessScope(state_mapping=current) as scope:
            outputs = function(x, training=training)
        updated = [scope.get_current_value(v) for v in function.non_trainable_variables]
        return outputs, updated

    checkpointed = keras.remat(pure)

    def call(x):
        outputs, updated = checkpointed(x)
        for variable, value in zip(function.non_trainable_variables, updated):
            variable.assign(value)
        return outputs

    return call
