"""`tf.data` pipelines for training and evaluation.

Both take a `DatasetSplit` (from any reader) or a plain `tf.data.Dataset`
of (image uint8 (H, W, 3), label (H, W)) and yield batches for
`model.fit` / `model.evaluate`:

    images float32 (B, H, W, 3) in [0, 255], labels int32 (B, H, W), 255 = ignore.

Performance: records (file paths) are shuffled and sharded before anything
is read; decoding and augmentation run with `num_parallel_calls=AUTOTUNE`;
batches are prefetched. `cache=True` keeps decoded examples in memory (or a
file, given a path) after the first epoch.

Determinism: `deterministic=True` fixes the order of the parallel maps and
seeds the shuffle and every augmentation draw (stateless ops, one seed per
example from `tf.data.Dataset.random`), so two runs give identical batches.

Distribution: with `tf.distribute`, prefer

    strategy.distribute_datasets_from_function(
        lambda context: train_pipeline(split, crop, global_batch, input_context=context))

which shards the *file list* across input pipelines (each worker reads only
its files) and batches per replica. `strategy.experimental_distribute_dataset`
on a pipeline built without `input_context` shards by data instead (the
auto-shard policy is set to DATA: there are no reader ops to shard by file).
"""

import tensorflow as tf

from danet_keras.data.augment import IGNORE_INDEX, augment_for_training, resize_short_side
from danet_keras.data.split import DatasetSplit


def _options(deterministic, sharded):
    options = tf.data.Options()
    if deterministic is not None:
        options.deterministic = bool(deterministic)
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
        if sharded
        else tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def _cache(dataset, cache):
    if not cache:
        return dataset
    return dataset.cache("" if cache is True else str(cache))


def _examples(data, input_context, deterministic, shuffle, shuffle_buffer, seed, cache):
    """Decoded (image, label) examples: shuffled records first, or cached then shuffled."""
    if isinstance(data, DatasetSplit):
        records = data.records(input_context)
        buffer = shuffle_buffer or max(data.num_examples, 1)
        if shuffle and not cache:
            records = records.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        examples = _cache(data.decode(records, deterministic), cache)
        if shuffle and cache:
            examples = examples.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        return examples
    if not isinstance(data, tf.data.Dataset):
        raise TypeError(f"expected a DatasetSplit or a tf.data.Dataset, got {type(data).__name__}")
    examples = data
    if input_context is not None and input_context.num_input_pipelines > 1:
        examples = examples.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    examples = _cache(examples, cache)
    if shuffle:
        examples = examples.shuffle(shuffle_buffer or 256, seed=seed, reshuffle_each_iteration=True)
    return examples


def train_pipeline(
    data,
    crop_size,
    batch_size,
    scale_range=(0.5, 2.0),
    flip=True,
    photometric=True,
    shuffle=True,
    shuffle_buffer=None,
    cache=False,
    deterministic=None,
    seed=None,
    input_context=None,
    drop_remainder=True,
    ignore_index=IGNORE_INDEX,
    augmenter=None,
):
    """The augmented, shuffled, batched training stream.

    Args:
        data: `DatasetSplit` or `tf.data.Dataset` of (image (H, W, 3), label (H, W)).
        crop_size: (height, width) of every training crop (an int for square).
        batch_size: global batch size (divided among replicas when
            `input_context` is given).
        scale_range: (min, max) random resize factor; None for no scaling.
        flip: random horizontal flips.
        photometric: random brightness/contrast/saturation/hue.
        shuffle: shuffle every epoch.
        shuffle_buffer: buffer size; default the whole split for a
            `DatasetSplit` (records are file names, so that is cheap), 256
            decoded examples for a plain dataset.
        cache: True caches decoded examples in memory, a path caches to file.
        deterministic: True for reproducible batches (seed defaults to 0),
            False to let parallel maps return out of order, None for the
            `tf.data` default.
        seed: seed of the shuffle and the augmentation.
        input_context: `tf.distribute.InputContext`: shard the files and
            batch per replica.
        drop_remainder: drop the last incomplete batch (static batch shape).
        ignore_index: label value for padding.
        augmenter: None, or extra augmentation applied to each batch after
            the built-in one: a Keras or keras-cv preprocessing layer (or any
            callable) taking and returning keras-cv's segmentation format,
            `{"images": (B, h, w, 3) float32, "segmentation_masks": (B, h, w,
            1)}`, e.g. `keras_cv.layers.RandomRotation(0.1,
            segmentation_classes=19)` or `keras.layers.RandomFlip()`. Turn
            the built-in steps off (`scale_range=None, flip=False,
            photometric=False`) to use only yours. Pixels a layer invents
            (rotation corners, say) get the label it fills them with, which
            is not `ignore_index` unless the layer is told so.

    Returns:
        tf.data.Dataset of (images float32 (B, h, w, 3) in [0, 255], labels int32 (B, h, w)).
    """
    if isinstance(crop_size, int):
        crop_size = (crop_size, crop_size)
    if deterministic and seed is None:
        seed = 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    examples = _examples(data, input_context, deterministic, shuffle, shuffle_buffer, seed, cache)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(example, example_seeds):
        image, label = example
        return augment_for_training(
            image, label, example_seeds, crop_size, scale_range, flip, photometric, ignore_index
        )

    dataset = tf.data.Dataset.zip((examples, seeds)).map(
        augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augmenter is not None:
        dataset = dataset.map(
            lambda images, labels: apply_augmenter(augmenter, images, labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(_options(deterministic, input_context is not None))


def apply_augmenter(augmenter, images, labels):
    """Runs a keras-cv-style segmentation augmenter on a batch of (images, labels).

    Args:
        augmenter: a callable on `{"images", "segmentation_masks"}` dicts.
        images: float32 (B, h, w, 3).
        labels: int (B, h, w).

    Returns:
        `(images float32 (B, h', w', 3), labels int32 (B, h', w'))`.
    """
    outputs = augmenter({"images": images, "segmentation_masks": labels[..., None]})
    images = tf.cast(outputs["images"], tf.float32)
    # Masks come back float from some layers: round, never truncate, before the cast.
    masks = tf.cast(tf.round(tf.cast(outputs["segmentation_masks"], tf.float32)), tf.int32)
    return images, masks[..., 0]


def eval_pipeline(
    data,
    batch_size=1,
    short_side=None,
    cache=False,
    deterministic=True,
    input_context=None,
    ignore_index=IGNORE_INDEX,
):
    """The evaluation stream: every example once, in order, no augmentation.

    Examples of different sizes in one batch are padded at the bottom/right
    (images with 0, labels with `ignore_index`, so padding is never scored).

    Args:
        data: `DatasetSplit` or `tf.data.Dataset` of (image (H, W, 3), label (H, W)).
        batch_size: global batch size.
        short_side: resize each example so its shorter side has this length
            (image bilinear, label nearest); None keeps the original size.
        cache: True caches decoded examples in memory, a path caches to file.
        deterministic: keep the file order (default True).
        input_context: `tf.distribute.InputContext`: shard the files and
            batch per replica.
        ignore_index: label value for padding.

    Returns:
        tf.data.Dataset of (images float32 (B, H, W, 3) in [0, 255], labels int32 (B, H, W)).
    """
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    examples = _examples(data, input_context, deterministic, False, None, None, cache)

    def prepare(image, label):
        label = tf.cast(label, tf.int32)
        if short_side is not None:
            return resize_short_side(image, label, short_side)
        return tf.cast(image, tf.float32), label

    dataset = examples.map(
        prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
    dataset = dataset.padded_batch(
        batch_size,
        padded_shapes=([None, None, 3], [None, None]),
        padding_values=(0.0, ignore_index),
    )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(_options(deterministic, input_context is not None))
