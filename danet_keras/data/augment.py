"""Joint image/label augmentation for training, and the evaluation resize.

All random choices are *stateless* and driven by a per-example seed that the
pipeline draws from `tf.data.Dataset.random`: with `deterministic=True` the
augmented stream is then the same whatever order the parallel map runs in.
That requirement decides what is written here and what is reused:

- Checked and not used: keras-cv 0.9 `RandomFlip`, `RandomCropAndResize`,
  `JitteredResize` and Keras `RandomFlip` transform `segmentation_masks`
  correctly, but they draw from a stateful `SeedGenerator` variable that
  parallel `tf.data` maps consume in a non-deterministic order, and none
  takes a per-example seed. keras-cv's `RandomCrop` does not transform masks
  at all, and none of them pads labels with the ignore index.
- So the geometric steps (scale, pad with ignore, crop, flip) are written
  here, each applying one random draw to both tensors, labels always with
  nearest-neighbour resizing; the photometric steps reuse TensorFlow's
  stateless `tf.image.stateless_random_{brightness,contrast,saturation,hue}`
  on the image only.
"""

import tensorflow as tf

IGNORE_INDEX = 255


def _seed(seeds, index):
    """A stateless seed pair for draw number `index` of this example."""
    return tf.random.experimental.stateless_fold_in(seeds, index)


def resize_pair(image, label, size):
    """Resizes image (bilinear) and label (nearest) to `size` = (height, width).

    Both use half-pixel centres, so the label stays aligned with the image.

    Args:
        image: (H, W, 3) tensor.
        label: (H, W) integer tensor.
        size: (height, width), ints or scalar tensors.

    Returns:
        image float32 (height, width, 3), label of `label`'s dtype (height, width).
    """
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
    return image, label


def random_scale(image, label, seeds, scale_range=(0.5, 2.0)):
    """Resizes the pair by one factor drawn uniformly from `scale_range`."""
    scale = tf.random.stateless_uniform([], _seed(seeds, 0), scale_range[0], scale_range[1])
    size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
    return resize_pair(image, label, tf.maximum(size, 1))


def pad_to_size(image, label, size, ignore_index=IGNORE_INDEX):
    """Pads bottom/right to at least `size`: image with 0, label with `ignore_index`."""
    shape = tf.shape(image)
    pad_h = tf.maximum(size[0] - shape[0], 0)
    pad_w = tf.maximum(size[1] - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
    label = tf.pad(label, [[0, pad_h], [0, pad_w]], constant_values=ignore_index)
    return image, label


def random_crop(image, label, size, seeds):
    """Crops the same random `size` window out of both (each at least that big)."""
    shape = tf.shape(image)
    top = tf.random.stateless_uniform([], _seed(seeds, 1), 0, shape[0] - size[0] + 1, tf.int32)
    left = tf.random.stateless_uniform([], _seed(seeds, 2), 0, shape[1] - size[1] + 1, tf.int32)
    image = image[top : top + size[0], left : left + size[1]]
    label = label[top : top + size[0], left : left + size[1]]
    return tf.ensure_shape(image, [size[0], size[1], None]), tf.ensure_shape(label, size)


def random_flip(image, label, seeds):
    """Mirrors both left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([], _seed(seeds, 3)) < 0.5
    return (
        tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image),
        tf.cond(flip, lambda: tf.reverse(label, [1]), lambda: label),
    )


def photometric_distortion(
    image, seeds, brightness=32.0, contrast=(0.5, 1.5), saturation=(0.5, 1.5), hue=0.05
):
    """Random brightness, contrast, saturation and hue, each applied with probability 1/2.

    The ranges are mmsegmentation's `PhotoMetricDistortion` (hue 18 of
    OpenCV's 180 = 0.1 of the circle, here +-0.05 as `tf.image` counts it).

    Args:
        image: (H, W, 3) float32 in [0, 255].
        seeds: (2,) int seed of this example.
        brightness: maximum added delta, in pixel values.
        contrast, saturation: (lower, upper) factor ranges.
        hue: maximum hue shift, as a fraction of the colour circle.

    Returns:
        (H, W, 3) float32 in [0, 255].
    """

    def maybe(index, fn, x):
        apply = tf.random.stateless_uniform([], _seed(seeds, 10 + index)) < 0.5
        return tf.cond(apply, lambda: fn(x, _seed(seeds, 20 + index)), lambda: x)

    x = image / 255.0
    x = maybe(0, lambda x, s: tf.image.stateless_random_brightness(x, brightness / 255.0, s), x)
    x = maybe(1, lambda x, s: tf.image.stateless_random_contrast(x, *contrast, s), x)
    x = tf.clip_by_value(x, 0.0, 1.0)
    x = maybe(2, lambda x, s: tf.image.stateless_random_saturation(x, *saturation, s), x)
    x = maybe(3, lambda x, s: tf.image.stateless_random_hue(x, hue, s), x)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def augment_for_training(
    image,
    label,
    seeds,
    crop_size,
    scale_range=(0.5, 2.0),
    flip=True,
    photometric=True,
    ignore_index=IGNORE_INDEX,
):
    """Scale, pad, crop, flip (jointly) and photometric distortion (image only).

    Args:
        image: (H, W, 3) uint8 or float.
        label: (H, W) integer train ids.
        seeds: (2,) int32/int64 seed of this example (stateless ops).
        crop_size: (height, width) of the output.
        scale_range: (min, max) resize factor; None to skip scaling.
        flip: random horizontal flip.
        photometric: random brightness/contrast/saturation/hue.
        ignore_index: label value of padded pixels.

    Returns:
        image float32 (crop_h, crop_w, 3) in [0, 255], label int32 (crop_h, crop_w).
    """
    seeds = tf.cast(seeds, tf.int64)
    label = tf.cast(label, tf.int32)
    if scale_range is not None:
        image, label = random_scale(image, label, seeds, scale_range)
    else:
        image = tf.cast(image, tf.float32)
    crop_size = (int(crop_size[0]), int(crop_size[1]))
    image, label = pad_to_size(image, label, crop_size, ignore_index)
    image, label = random_crop(image, label, crop_size, seeds)
    if flip:
        image, label = random_flip(image, label, seeds)
    if photometric:
        image = photometric_distortion(image, seeds)
    return image, label


def resize_short_side(image, label, short_side):
    """Resizes so that the shorter side is `short_side` (image bilinear, label nearest).

    Args:
        image: (H, W, 3) tensor.
        label: (H, W) integer tensor.
        short_side: target length of the shorter side.

    Returns:
        image float32, label of the input dtype.
    """
    return resize_pair(image, label, short_side_size(tf.shape(image)[:2], short_side))


def short_side_size(size, short_side):
    """(height, width) scaled so that the shorter side is `short_side`, the aspect kept.

    Args:
        size: (height, width), ints or an int tensor.
        short_side: target length of the shorter side.

    Returns:
        int32 tensor (2,).
    """
    shape = tf.cast(size, tf.float32)
    scale = float(short_side) / tf.reduce_min(shape)
    return tf.cast(tf.round(shape * scale), tf.int32)
