"""A convolution handed to the kernel library in pieces: `SlicedConv2D`.

Two ways of cutting the same convolution `y = conv(x, W) + b`:

- **Filter slices.** `y = concat_s( conv(x, W[..., F_s]) + b[F_s] )` over
  equal slices F_1 ... F_S of the filters: every output channel is the same
  sum of the same products, only `slices` filters' worth at a time.
- **Row bands.** A stride-1 convolution of dilation d and kernel height k
  reads h = d (k - 1) / 2 rows above and below each output row. The image's
  top and bottom halves, each with its h neighbouring rows, go to the
  library as one batch of twice the images; of each half's output, the rows
  that saw a cut (h of them) are dropped. The remaining rows are the same
  sums as the whole convolution's: their inputs are the same rows.

They exist for speed alone. oneDNN picks its algorithm per convolution shape,
and some shapes run at a higher rate cut: DANet's head convolutions (3x3,
2048 -> 512 channels at 64x64) took 0.66x-0.71x of the time in 8 slices of
64 filters on an AVX-512 CPU, where with oneDNN capped at AVX2 the same slicing
took 4x longer, but two row bands (a batch of 2 instead of 1) 0.61x. Which
cut pays is therefore measured on the machine at hand
(`danet_keras.inference.calibration`), never assumed.

The layer is a `keras.layers.Conv2D` with the same weights (`kernel`, `bias`)
and config plus `slices` and `bands`, so a Conv2D's weights load into it
unchanged. Bands cost a copy of the input (and of the output) while the
convolution runs.
"""

import keras
from keras import ops

BANDS = (1, 2)
# Bands copy their input while they run. Above this many input elements (64 MB of float32:
# DANet's head input up to a 512x1024 image) the convolution runs whole, so that a cut never
# makes the inference graph hold much more memory than the model it came from: with oneDNN
# capped at AVX2, where both head convolutions are banded, DANet-ResNet50 served at 1024x2048
# peaked at 2.7 GB with no bound, over the 2.4 GB that tests/export/test_serving_limits.py holds.
MAX_BAND_INPUT_ELEMENTS = 2**24


@keras.saving.register_keras_serializable(package="danet_keras")
class SlicedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, run in slices of its filters and/or in row bands (see the module).

    Args:
        filters: output channels; a multiple of `slices`.
        kernel_size: as `keras.layers.Conv2D`.
        slices: how many slices of `filters // slices` filters the
            convolution runs as (1: all filters at once).
        bands: 1 (the whole image) or 2 (its two halves as one batch);
            2 needs stride 1, `"same"` padding and channels last. Inputs of
            fewer than 2 d (k - 1) / 2 rows, or of more than
            `MAX_BAND_INPUT_ELEMENTS` elements, run whole.
        **kwargs: the other `keras.layers.Conv2D` arguments (`strides`,
            `padding`, `dilation_rate`, `activation`, `use_bias`, ...),
            `groups` excepted.

    Returns (when called):
        The convolution's output, equal to `keras.layers.Conv2D`'s with the
        same weights up to the kernel library's order of summation.
    """

    def __init__(self, filters, kernel_size, slices=1, bands=1, **kwargs):
        if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
            raise ValueError(f"`slices` must be an integer >= 1, got {slices!r}.")
        if filters % slices:
            raise ValueError(f"`filters` ({filters}) must be a multiple of `slices` ({slices}).")
        if bands not in BANDS:
            raise ValueError(f"`bands` must be one of {BANDS}, got {bands!r}.")
        if kwargs.get("groups", 1) != 1:
            raise ValueError("SlicedConv2D slices the filters of an ungrouped convolution.")
        super().__init__(filters, kernel_size, **kwargs)
        if bands > 1 and not self._bandable():
            raise ValueError(
                "`bands=2` needs a stride-1 convolution with 'same' padding, channels last."
            )
        self.slices = slices
        self.bands = bands

    def _bandable(self):
        return (
            tuple(self.strides) == (1, 1)
            and self.padding == "same"
            and self.data_format == "channels_last"
            and self.kernel_size[0] % 2 == 1
        )

    def _convolve(self, inputs):
        """The convolution, bias and activation, in `slices` slices of the filters."""
        kernels = ops.split(self.kernel, self.slices, axis=-1) if self.slices > 1 else [self.kernel]
        if not self.use_bias:
            biases = [None] * self.slices
        else:
            biases = ops.split(self.bias, self.slices) if self.slices > 1 else [self.bias]
        channel_axis = -1 if self.data_format == "channels_last" else 1
        outputs = []
        for kernel, bias in zip(kernels, biases):
            y = self.convolution_op(inputs, kernel)
            if bias is not None:
                shape = [1, 1, 1, 1]
                shape[channel_axis] = bias.shape[0]
                y = ops.add(y, ops.reshape(bias, shape))
            outputs.append(y if self.activation is None else self.activation(y))
        return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=channel_axis)

    def _halo(self):
        """Rows an output row reads above (and below) its own: d (k - 1) / 2."""
        return self.dilation_rate[0] * (self.kernel_size[0] - 1) // 2

    def _in_bands(self, inputs):
        """The two halves of the rows, each with its `halo` neighbours, as one batch."""
        halo = self._halo()
        batch, height = ops.shape(inputs)[0], ops.shape(inputs)[1]
        half = (height + 1) // 2
        # Both bands hold half + halo rows: rows [0, half + halo) and the last half + halo.
        stacked = ops.concatenate(
            [inputs[:, : half + halo], inputs[:, height - half - halo :]], axis=0
        )
        outputs = self._convolve(stacked)
        # The bottom band starts at row height - half - halo; its first output row kept is `half`.
        first = halo + 2 * half - height
        return ops.concatenate([outputs[:batch, :half], outputs[batch:, first:]], axis=1)

    def call(self, inputs):
        if self.bands == 1:
            return self._convolve(inputs)
        halo = self._halo()
        if None not in inputs.shape:
            # Static shape: decided while tracing.
            batch, height, width, channels = inputs.shape
            banded = height // 2 >= halo and batch * height * width * channels <= (
                MAX_BAND_INPUT_ELEMENTS
            )
            return self._in_bands(inputs) if banded else self._convolve(inputs)
        batch, height, width, channels = ops.unstack(ops.cast(ops.shape(inputs), "float32"))
        # In float32: a batch of large images overflows int32 elements.
        elements = batch * height * width * channels
        return ops.cond(
            ops.logical_and(
                ops.shape(inputs)[1] // 2 >= halo, elements <= float(MAX_BAND_INPUT_ELEMENTS)
            ),
            lambda: self._in_bands(inputs),
            lambda: self._convolve(inputs),
        )

    def get_config(self):
        config = super().get_config()
        config.pop("groups", None)
        config.update(slices=self.slices, bands=self.bands)
        return config
