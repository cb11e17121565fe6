"""Splitting a feature map along its channels, the inverse of a channel concatenation."""

import keras


@keras.saving.register_keras_serializable(package="danet_keras")
class ChannelSplit(keras.layers.Layer):
    """Splits (B, H, W, sum(sizes)) into len(sizes) maps of sizes[i] channels.

    Used where two convolutions of the same input were merged into one wider
    convolution (`danet_keras.optimize_for_inference`): the split hands each
    consumer its own channels.

    Args:
        sizes: channel counts of the parts, in order.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: (..., sum(sizes)) tensor.

    Returns:
        A list of len(sizes) tensors.
    """

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 1 or any(s < 1 for s in sizes):
            raise ValueError(f"`sizes` must be positive channel counts, got {sizes!r}.")
        self.sizes = sizes

    def call(self, inputs):
        parts, start = [], 0
        for size in self.sizes:
            parts.append(inputs[..., start : start + size])
            start += size
        return parts

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], size) for size in self.sizes]

    def compute_output_spec(self, inputs):
        return [
            keras.KerasTensor((*inputs.shape[:-1], size), dtype=inputs.dtype) for size in self.sizes
        ]

    def get_config(self):
        config = super().get_config()
        config["sizes"] = list(self.sizes)
        return config
