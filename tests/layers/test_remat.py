import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.layers.remat import rematerialized


def _conv_bn(momentum=0.5):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(momentum=momentum)(x)
    return keras.Model(inputs, keras.layers.ReLU()(x))


def _step(model, images, remat, eager):
    def step(x):
        with tf.GradientTape() as tape:
            y = rematerialized(model, True)(x) if remat else model(x, training=True)
            loss = tf.reduce_sum(y**2)
        return tape.gradient(loss, model.trainable_variables)

    step = step if eager else tf.function(step)
    return [g.numpy() for g in step(tf.constant(images))]


@pytest.mark.parametrize("eager", [False, True])
def test_gradients_and_batchnorm_statistics_equal_one_plain_step(eager):
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    results = {}
    for remat in (False, True):
        keras.utils.set_random_seed(3)
        model = _conv_bn()
        gradients = _step(model, images, remat, eager)
        # The recomputation must not move the statistics a second time.
        results[remat] = gradients, [v.numpy() for v in model.non_trainable_variables]
    (plain_gradients, plain_state), (remat_gradients, remat_state) = results[False], results[True]
    assert any(np.any(s != 0) for s in plain_state)  # the step did move them
    for plain, remat in zip(plain_gradients + plain_state, remat_gradients + remat_state):
        np.testing.assert_allclose(remat, plain, rtol=1e-6, atol=1e-6)


def test_the_training_flag_reaches_the_recomputation():
    # In inference mode BatchNorm uses the moving statistics (here 0 and 1) and
    # the recomputation would give other gradients than the forward pass.
    images = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 8, 8, 3)).astype("float32")
    keras.utils.set_random_seed(4)
    model = _conv_bn()
    plain = _step(model, images, remat=False, eager=False)
    remat = _step(model, images, remat=True, eager=False)
    for p, r in zip(plain, remat):
        np.testing.assert_allclose(r, p, rtol=1e-5, atol=1e-6)
