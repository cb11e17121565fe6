"""Input pipeline throughput vs. what a DANet-ResNet50 training step consumes.

Row 1: images/s that `train_pipeline` delivers on its own (decode, scale,
pad, crop 512x512, flip, photometric, batch) on the demo city.
Row 2: images/s one training step of DANet-ResNet50 (19 classes, output
stride 8) consumes at the same crop: forward + backward + SGD update on a
batch (loss: cross-entropy summed over the model's outputs, ignore 255).
The pipeline must deliver well above row 2 (the issue asks for 10x).

    python benchmarks/input_pipeline.py [--data DIR] [--batch 8] [--train-batch 2]
"""

import argparse
import os
import tempfile
import time

import numpy as np


def measure_pipeline(data_dir, crop, batch, batches):
    import danet_keras

    split = danet_keras.data.cityscapes_dataset(data_dir, "train")
    dataset = danet_keras.data.train_pipeline(split, (crop, crop), batch).repeat()
    iterator = iter(dataset)
    for _ in range(2):  # warm-up: tracing, AUTOTUNE ramp-up
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        images, labels = next(iterator)
    images.numpy()
    return batches * batch / (time.perf_counter() - start)


def measure_train_step(crop, batch, steps):
    import keras
    import tensorflow as tf

    import danet_keras

    model = danet_keras.DANet(19, backbone="resnet50")
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (batch, crop, crop, 3)), tf.float32)
    labels = tf.constant(rng.integers(0, 19, (batch, crop, crop)), tf.int32)

    @tf.function
    def train_step(images, labels):
        valid = tf.cast(labels != 255, tf.float32)
        safe = tf.where(labels == 255, 0, labels)
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            loss = 0.0
            for logits in outputs.values():
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(safe, logits)
                loss += tf.reduce_sum(ce * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    train_step(images, labels).numpy()  # warm-up: tracing
    start = time.perf_counter()
    for _ in range(steps):
        loss = train_step(images, labels)
    loss.numpy()
    return steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="demo city directory (written to a temp dir when absent)")
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8, help="pipeline batch size")
    parser.add_argument("--batches", type=int, default=20, help="timed pipeline batches")
    parser.add_argument("--train-batch", type=int, default=2, help="training-step batch size")
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps")
    parser.add_argument("--skip-train", action="store_true", help="only time the pipeline")
    args = parser.parse_args()

    import danet_keras

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data or os.path.join(scratch, "city")
        if not os.path.isdir(os.path.join(data_dir, "leftImg8bit")):
            danet_keras.data.make_demo_city(data_dir, num_train=64, num_val=1)
        pipeline = measure_pipeline(data_dir, args.crop, args.batch, args.batches)
    print(f"{'measurement':<52} {'images/s':>10}")
    print(f"{f'input pipeline alone, crop {args.crop}, batch {args.batch}':<52} {pipeline:>10.2f}")
    if not args.skip_train:
        step = measure_train_step(args.crop, args.train_batch, args.train_steps)
        label = f"DANet-R50 train step, crop {args.crop}, batch {args.train_batch}"
        print(f"{label:<52} {step:>10.3f}")
        print(f"{'ratio pipeline / train step':<52} {pipeline / step:>10.1f}x")


if __name__ == "__main__":
    main()
