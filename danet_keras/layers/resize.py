"""Bilinear resizing with both PyTorch corner conventions.

`align_corners=False` (half-pixel centres) is what `keras.ops.image.resize`
and `tf.image.resize` do, and what mmsegmentation uses (`tf.image.resize`
under TensorFlow, whose sizes may be known at run time only;
`keras.ops.image.resize` under JAX and PyTorch). `align_corners=True` (the
official DANet code) maps the corner pixels of input and output onto each
other; neither Keras nor `tf.image.resize` offers it, so it is written here
as two separable gathers plus linear interpolation -- cheap, exact,
differentiable and made of ops every exporter knows (GATHER, MUL, ADD).
"""

import keras
import tensorflow as tf
from keras import ops


def _interpolate_axis_align_corners(x, out_size, axis):
    """Linear interpolation along `axis` with aligned corners."""
    in_size = ops.shape(x)[axis]
    scale = ops.cast(in_size - 1, "float32") / ops.cast(ops.maximum(out_size - 1, 1), "float32")
    source = ops.cast(ops.arange(out_size), "float32") * scale
    lower = ops.minimum(ops.cast(ops.floor(source), "int32"), in_size - 1)
    upper = ops.minimum(lower + 1, in_size - 1)
    weight = source - ops.cast(lower, "float32")
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    weight = ops.cast(ops.reshape(weight, shape), x.dtype)
    low = ops.take(x, lower, axis=axis)
    high = ops.take(x, upper, axis=axis)
    return low + (high - low) * weight


def _resize_half_pixel(images, height, width):
    """Bilinear resizing with half-pixel centres (no antialiasing)."""
    if keras.backend.backend() == "tensorflow":
        # tf.image.resize, not keras.ops.image.resize: the latter checks the
        # size in Python and cannot take a size known only at run time
        # (SavedModel signatures of any image size).
        return tf.image.resize(images, tf.stack([height, width]), method="bilinear")
    # JAX and PyTorch: shapes are always Python ints here.
    return ops.image.resize(images, (height, width), interpolation="bilinear")


def bilinear_resize(images, size, align_corners=False):
    """Resizes NHWC `images` to `size` = (height, width) bilinearly.

    Args:
        images: (B, H, W, C) float tensor.
        size: (height, width); Python ints or scalar tensors.
        align_corners: PyTorch's `align_corners` flag: True aligns the centres
            of the corner pixels (official DANet), False uses half-pixel
            centres (mmsegmentation, `tf.image.resize`).

    Returns:
        (B, height, width, C) tensor of the input's dtype.
    """
    height, width = size
    if not align_corners:
        return ops.cast(_resize_half_pixel(images, height, width), images.dtype)
    resized = _interpolate_axis_align_corners(images, height, axis=1)
    return _interpolate_axis_align_corners(resized, width, axis=2)


@keras.saving.register_keras_serializable(package="danet_keras")
class ResizeLike(keras.layers.Layer):
    """Bilinearly resizes a feature map to the spatial size of a reference.

    Used to bring logits at 1/8 resolution back to the input image's size,
    whatever that size is at run time.

    Args:
        align_corners: see `bilinear_resize`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: (B, h, w, C) tensor to resize.
        reference: (B, H, W, ...) tensor whose H and W are the target size.

    Returns:
        (B, H, W, C) tensor.
    """

    def __init__(self, align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.align_corners = bool(align_corners)

    def call(self, inputs, reference):
        shape = ops.shape(reference)
        return bilinear_resize(inputs, (shape[1], shape[2]), self.align_corners)

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["align_corners"] = self.align_corners
        return config
