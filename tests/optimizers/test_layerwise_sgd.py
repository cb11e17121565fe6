import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras import DANet
from danet_keras.optimizers.layerwise_sgd import LayerwiseSGD, head_learning_rate_multipliers
from danet_keras.optimizers.schedules import PolyDecay

from ..numerics import assert_close_to_scale

BASE_LR, STEPS, WEIGHT_DECAY, MOMENTUM = 0.05, 6, 1e-2, 0.9


def two_layer_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="tanh", name="body")(inputs)
    outputs = keras.layers.Dense(2, name="head")(hidden)
    return keras.Model(inputs, outputs)


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_torch_sgd_with_two_parameter_groups(nesterov):
    torch = pytest.importorskip("torch")
    x, y = data()
    model = two_layer_model()
    optimizer = LayerwiseSGD(
        PolyDecay(BASE_LR, STEPS),
        momentum=MOMENTUM,
        nesterov=nesterov,
        weight_decay=WEIGHT_DECAY,
        learning_rate_multipliers={"head/kernel": 10.0, "head/bias": 10.0},
    )

    # The official recipe in PyTorch: backbone group at lr, head group at 10 lr,
    # weight decay on weights only, poly decay applied before every step.
    body, head = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)
    with torch.no_grad():
        for layer, name in ((body, "body"), (head, "head")):
            kernel, bias = model.get_layer(name).get_weights()
            layer.weight.copy_(torch.from_numpy(kernel.T))
            layer.bias.copy_(torch.from_numpy(bias))
    groups = [
        {"params": [body.weight], "weight_decay": WEIGHT_DECAY, "multiplier": 1.0},
        {"params": [body.bias], "weight_decay": 0.0, "multiplier": 1.0},
        {"params": [head.weight], "weight_decay": WEIGHT_DECAY, "multiplier": 10.0},
        {"params": [head.bias], "weight_decay": 0.0, "multiplier": 10.0},
    ]
    torch_optimizer = torch.optim.SGD(groups, lr=BASE_LR, momentum=MOMENTUM, nesterov=nesterov)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    for step in range(STEPS):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        optimizer.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )

        for group in torch_optimizer.param_groups:
            group["lr"] = BASE_LR * (1 - step / STEPS) ** 0.9 * group["multiplier"]
        torch_optimizer.zero_grad()
        ((head(torch.tanh(body(tx))) - ty) ** 2).mean().backward()
        torch_optimizer.step()

    # TensorFlow against PyTorch, float32: each step's gradient differs by a few
    # ulps (tanh from two math libraries, 8-term means), scaled by the learning
    # rate (up to 10 x 0.05) and kept by the momentum over 6 steps: ~1e-6 of
    # weights of scale ~1. The bound is relative to the weights' scale.
    pairs = (
        (model.get_layer("body").get_weights()[0], body.weight.detach().numpy().T),
        (model.get_layer("body").get_weights()[1], body.bias.detach().numpy()),
        (model.get_layer("head").get_weights()[0], head.weight.detach().numpy().T),
        (model.get_layer("head").get_weights()[1], head.bias.detach().numpy()),
    )
    for actual, expected in pairs:
        assert_close_to_scale(actual, expected, 2e-6, "weights after 6 steps")


def test_multipliers_and_coupled_decay_in_one_plain_step():
    x, y = data(1)
    model = two_layer_model()
    before = [v.numpy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
    optimizer = LayerwiseSGD(
        0.1, momentum=0.0, weight_decay=0.5, learning_rate_multipliers={"head/kernel": 10.0}
    )
    optimizer.apply_gradients(zip([tf.constant(g) for g in grads], model.trainable_variables))
    for variable, old, grad in zip(model.trainable_variables, before, grads):
        multiplier = 10.0 if variable.path == "head/kernel" else 1.0
        decay = 0.5 * old if variable.name == "kernel" else 0.0
        np.testing.assert_allclose(
            variable.numpy(), old - 0.1 * multiplier * (grad + decay), rtol=1e-5, atol=1e-7
        )


def test_mixed_precision_fit_applies_unscaled_gradients():
    x, y = data(2)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = two_layer_model()
        optimizer = LayerwiseSGD(
            0.1, momentum=0.0, weight_decay=0.0, learning_rate_multipliers={"head/kernel": 10.0}
        )
        model.compile(optimizer=optimizer, loss="mse")
        before = [v.numpy() for v in model.trainable_variables]
        with tf.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(y, tf.cast(model(x), "float32"))
            loss = tf.reduce_mean(loss)
        grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    for variable, old, grad in zip(model.trainable_variables, before, grads):
        multiplier = 10.0 if variable.path == "head/kernel" else 1.0
        np.testing.assert_allclose(
            variable.numpy(), old - 0.1 * multiplier * grad, rtol=2e-2, atol=1e-4
        )


def test_head_learning_rate_multipliers_cover_exactly_the_head():
    model = DANet(3, backbone="resnet18", head_channels=16, aux_head=True)
    multipliers = head_learning_rate_multipliers(model, 10.0)
    backbone_paths = {v.path for v in model.backbone.trainable_variables}
    all_paths = {v.path for v in model.trainable_variables}
    assert set(multipliers) == all_paths - backbone_paths
    assert set(multipliers.values()) == {10.0}
    assert "position_attention/gamma" in multipliers and "fused_classifier/kernel" in multipliers


def test_config_round_trip_keeps_multipliers_and_decay():
    optimizer = LayerwiseSGD(
        PolyDecay(0.01, 100, warmup_steps=10),
        weight_decay=1e-4,
        learning_rate_multipliers={"a/kernel": 10.0},
    )
    clone = LayerwiseSGD.from_config(optimizer.get_config())
    assert clone.learning_rate_multipliers == {"a/kernel": 10.0}
    assert clone.coupled_weight_decay == 1e-4 and clone.weight_decay is None
    assert clone.get_config()["learning_rate"] == optimizer.get_config()["learning_rate"]
