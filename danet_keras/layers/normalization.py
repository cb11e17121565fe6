"""Pixel normalisation inside the model, so exported models take raw images."""

import keras
from keras import ops

from danet_keras.utils.architecture import IMAGENET_MEAN, IMAGENET_STD

# keras.applications' "caffe" convention: BGR, per-channel mean, no scaling.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

NORMALIZATION_MODES = ("torch", "caffe")


@keras.saving.register_keras_serializable(package="danet_keras")
class ImageNormalization(keras.layers.Layer):
    """Maps RGB pixel values in [0, 255] to what a backbone was trained on.

    - `"torch"`: `(x / 255 - mean) / std` with ImageNet mean/std, RGB order
      (official DANet, mmsegmentation, torchvision weights).
    - `"caffe"`: RGB -> BGR, then subtract the ImageNet BGR mean
      (`keras.applications.resnet.preprocess_input`).

    Args:
        mode: one of `"torch"`, `"caffe"`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: (B, H, W, 3) RGB images, any real or integer dtype, [0, 255].

    Returns:
        (B, H, W, 3) normalised float tensor.
    """

    def __init__(self, mode="torch", **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATION_MODES:
            raise ValueError(f"`mode` must be one of {NORMALIZATION_MODES}, got {mode!r}.")
        self.mode = mode
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: 3})

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "torch":
            mean = ops.array([255.0 * m for m in IMAGENET_MEAN], dtype=self.compute_dtype)
            std = ops.array([255.0 * s for s in IMAGENET_STD], dtype=self.compute_dtype)
            return (x - mean) / std
        return ops.flip(x, axis=-1) - ops.array(CAFFE_MEAN_BGR, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
