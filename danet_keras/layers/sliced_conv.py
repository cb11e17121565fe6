"""A convolution computed in slices of its filters: `SlicedConv2D`.

    y = concat_s( conv(x, W[..., F_s]) + b[F_s] ),   F_1 ... F_S  equal slices of the filters

is the convolution `conv(x, W) + b` exactly: every output channel is the same
sum of the same products, only the filters are handed to the kernel library
`slices` at a time. It exists for speed alone. oneDNN picks its blocking
per convolution shape, and for some shapes a slice of the filters runs at a
higher rate than the whole: DANet's head convolutions (3x3, 2048 -> 512
channels at 64x64) took 0.66x-0.71x of the time in 8 slices of 64 filters on
an AVX-512 CPU, while with oneDNN capped at AVX2 the same slicing took 4x
longer. Whether it pays is therefore measured on the machine at hand
(`danet_keras.inference.calibration`), never assumed.

The layer is a `keras.layers.Conv2D` with the same weights (`kernel`, `bias`)
and config plus `slices`, so a Conv2D's weights load into it unchanged.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="danet_keras")
class SlicedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, run as `slices` convolutions over equal slices of its filters.

    Args:
        filters: output channels; a multiple of `slices`.
        kernel_size: as `keras.layers.Conv2D`.
        slices: how many slices of `filters // slices` filters the
            convolution runs as (1: a plain convolution).
        **kwargs: the other `keras.layers.Conv2D` arguments (`strides`,
            `padding`, `dilation_rate`, `activation`, `use_bias`, ...),
            `groups` excepted.

    Returns (when called):
        The convolution's output, equal to `keras.layers.Conv2D`'s with the
        same weights up to the kernel library's order of summation.
    """

    def __init__(self, filters, kernel_size, slices=1, **kwargs):
        if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
            raise ValueError(f"`slices` must be an integer >= 1, got {slices!r}.")
        if filters % slices:
            raise ValueError(f"`filters` ({filters}) must be a multiple of `slices` ({slices}).")
        if kwargs.get("groups", 1) != 1:
            raise ValueError("SlicedConv2D slices the filters of an ungrouped convolution.")
        super().__init__(filters, kernel_size, **kwargs)
        self.slices = slices

    def call(self, inputs):
        if self.slices == 1:
            return super().call(inputs)
        kernels = ops.split(self.kernel, self.slices, axis=-1)
        biases = ops.split(self.bias, self.slices) if self.use_bias else [None] * self.slices
        channel_axis = -1 if self.data_format == "channels_last" else 1
        bias_shape = [1, 1, 1, 1]
        outputs = []
        for kernel, bias in zip(kernels, biases):
            y = self.convolution_op(inputs, kernel)
            if bias is not None:
                bias_shape[channel_axis] = bias.shape[0]
                y = ops.add(y, ops.reshape(bias, bias_shape))
            outputs.append(y if self.activation is None else self.activation(y))
        return ops.concatenate(outputs, axis=channel_axis)

    def get_config(self):
        config = super().get_config()
        config.pop("groups", None)
        config["slices"] = self.slices
        return config
