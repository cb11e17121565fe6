"""Inference strategies: logits of full images, plain, by sliding window, multi-scale + flip.

Three ways to turn an image into logits at its full resolution, composable:

- plain: one forward pass on the whole image (`logits_function`);
- sliding window (`sliding_window_logits`): crops of `crop_size` at `stride`
  (the official code evaluates 1024x2048 Cityscapes images with 768 crops at
  stride 512); overlapping logits are averaged;
- multi-scale + flip (`multi_scale_logits`): the image resized by each scale
  (1.0 = its own resolution), optionally also mirrored, each run plainly or by
  sliding window, the logits resized back and averaged.

With the scale list [1.0], no flip and a window that covers the whole image,
all three give exactly the plain logits. Averaging logits (not
probabilities) follows the official code.
"""

import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from danet_keras.layers.resize import bilinear_resize

# Scales of the official multi-scale evaluation (Cityscapes val 81.50 with flip).
PAPER_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.2)

_LOGITS_FUNCTIONS = weakref.WeakKeyDictionary()


def _select_logits(outputs):
    return outputs["logits"] if isinstance(outputs, dict) else outputs


def logits_function(model):
    """A compiled callable `images (B, H, W, 3) -> logits (B, H, W, K)` for `model`.

    Args:
        model: a `keras.Model` (e.g. `DANet`, whose `"logits"` output is used)
            or any callable returning logits or a dict with `"logits"`.

    Returns:
        A callable; for a Keras model in inference mode, cached per model so
        that repeated calls with a seen shape do not retrace: a `tf.function`
        under TensorFlow, Keras' own predict step (`jax.jit`, eager PyTorch;
        NumPy out) under JAX and PyTorch.
    """
    if not isinstance(model, keras.Model):
        return lambda images: _select_logits(model(images))
    if model not in _LOGITS_FUNCTIONS:
        # One trace per input shape: crops and images of a dataset share a few sizes.
        if keras.backend.backend() == "tensorflow":
            function = tf.function(lambda images: _select_logits(model(images, training=False)))
        else:
            function = lambda images: _select_logits(model.predict_on_batch(images))  # noqa: E731
        _LOGITS_FUNCTIONS[model] = function
    return _LOGITS_FUNCTIONS[model]


def _pair(value, name):
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise ValueError(f"`{name}` must be a positive integer or (height, width), got {value!r}.")
    return int(pair[0]), int(pair[1])


def window_starts(size, window, stride):
    """Start offsets of windows of length `window` covering [0, size) with `stride`.

    The last window is shifted back to end at `size` (mmsegmentation's rule),
    so every window lies inside the image.

    Args:
        size: image length along an axis.
        window: window length (<= size).
        stride: step between starts.

    Returns:
        A list of starts.
    """
    count = max(math.ceil((size - window) / stride), 0) + 1
    return sorted({min(i * stride, size - window) for i in range(count)})


def sliding_window_logits(model, images, crop_size, stride=None):
    """Logits of full images from overlapping crops.

    A window is `crop_size` clipped to the image, so an image no larger than
    the crop is one window (plain inference), never padded.

    Args:
        model: see `logits_function`.
        images: (B, H, W, 3) images in [0, 255] (array or tensor).
        crop_size: window size, an int or (height, width).
        stride: step between windows, an int or (height, width); default
            2/3 of the crop (the official 768 / 512).

    Returns:
        (B, H, W, K) float32 NumPy array: every pixel's logits averaged over
        the windows that contain it.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"`images` must be (B, H, W, 3), got shape {images.shape}.")
    crop_h, crop_w = _pair(crop_size, "crop_size")
    if stride is None:
        stride = (max(1, round(crop_h * 2 / 3)), max(1, round(crop_w * 2 / 3)))
    stride_h, stride_w = _pair(stride, "stride")
    _, height, width, _ = images.shape
    crop_h, crop_w = min(crop_h, height), min(crop_w, width)
    predict = logits_function(model)
    total, counts = None, np.zeros((height, width, 1), np.float32)
    for top in window_starts(height, crop_h, stride_h):
        for left in window_starts(width, crop_w, stride_w):
            window = images[:, top : top + crop_h, left : left + crop_w]
            logits = np.asarray(predict(window), dtype=np.float32)
            if total is None:
                total = np.zeros(images.shape[:3] + logits.shape[-1:], np.float32)
            total[:, top : top + crop_h, left : left + crop_w] += logits
            counts[top : top + crop_h, left : left + crop_w] += 1.0
    return total / counts


def resize_logits(logits, size, align_corners=False):
    """Bilinearly resizes (B, h, w, K) logits to `size` = (H, W); NumPy in, NumPy out."""
    if tuple(logits.shape[1:3]) == tuple(size):
        return logits
    return np.asarray(bilinear_resize(np.asarray(logits, np.float32), size, align_corners))


def multi_scale_logits(
    model, images, scales=(1.0,), flip=False, crop_size=None, stride=None, align_corners=None
):
    """Logits averaged over rescaled (and mirrored) copies of the images.

    Args:
        model: see `logits_function`.
        images: (B, H, W, 3) images in [0, 255].
        scales: resize factors relative to the image's own size;
            `PAPER_SCALES` for the official multi-scale evaluation.
        flip: also run each scale on the horizontally mirrored image.
        crop_size: None for plain inference at each scale, or the sliding
            window crop (see `sliding_window_logits`).
        stride: sliding-window stride.
        align_corners: convention for resizing logits back; default the
            model's own (`model.align_corners`), else False.

    Returns:
        (B, H, W, K) float32 NumPy array.
    """
    images = np.asarray(images, dtype=np.float32)
    scales = tuple(float(s) for s in scales)
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"`scales` must be a non-empty list of positive factors, got {scales!r}.")
    if align_corners is None:
        align_corners = bool(getattr(model, "align_corners", False))
    height, width = images.shape[1:3]

    def infer(batch):
        if crop_size is None:
            return np.asarray(logits_function(model)(batch), dtype=np.float32)
        return sliding_window_logits(model, batch, crop_size, stride)

    total = None
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        # Images are resized with half-pixel centres, as PIL / cv2 do in the official loaders.
        scaled = images if size == (height, width) else np.asarray(bilinear_resize(images, size))
        logits = infer(scaled)
        if flip:
            logits = (logits + infer(np.ascontiguousarray(scaled[:, :, ::-1]))[:, :, ::-1]) / 2.0
        logits = resize_logits(logits, (height, width), align_corners)
        total = logits if total is None else total + logits
    return total / len(scales)
