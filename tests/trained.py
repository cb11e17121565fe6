"""A small DANet trained for a few seconds on demo-city scenes, for the precision tests.

A fresh model's logits are nearly tied everywhere, so any rounding flips
classes and agreement figures measure nothing; after a short training most
pixels are decided, as in a real model, and bfloat16 or int8 agreement is
meaningful. Built once per test session (`small_trained_danet`).
"""

import functools

import keras
import numpy as np
import tensorflow as tf

import danet_keras
from danet_keras.apps.benchmark import keras_training_step
from danet_keras.data.demo_city import render_scene

IMAGE_SIZE = (64, 128)
NUM_TRAIN, NUM_TEST = 24, 4
STEPS, BATCH_SIZE = 72, 4


def _scenes(split, count):
    scenes = [render_scene((11, split, index), IMAGE_SIZE) for index in range(count)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])


@functools.lru_cache(maxsize=1)
def small_trained_danet():
    """(model, training images, test images) of a DANet-ResNet18 trained briefly.

    Images are uint8 (N, 64, 128, 3): 24 training scenes, 4 test scenes.

    The demo city's label ids are mapped to 0..K-1 (K classes of the scenes);
    both attentions start at 0.5 so that they matter.
    """
    keras.utils.set_random_seed(5)
    images, labels = _scenes(0, NUM_TRAIN)
    ids, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(images.shape[:3]).astype(np.int32)
    model = danet_keras.DANet(len(ids), backbone="resnet18", head_channels=32)
    model.get_layer("position_attention").gamma.assign(0.5)
    model.get_layer("channel_attention").beta.assign(0.5)
    step = keras_training_step(model, keras.optimizers.Adam(2e-3))
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        batch = rng.choice(NUM_TRAIN, BATCH_SIZE, replace=False)
        step(tf.constant(images[batch], tf.float32), tf.constant(labels[batch]))
    test_images, _ = _scenes(1, NUM_TEST)
    return model, images, test_images
