"""Named convolution / BatchNorm / ReLU layers with PyTorch's conventions, for functional graphs.

The backbone and the DANet head are built from the same few layers; this
factory adds them to a functional graph with the settings that make converted
PyTorch weights give the same numbers: symmetric padding for strided
convolutions (Keras' `"same"` pads strided convolutions asymmetrically),
BatchNorm epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1), and the official
code's He-normal initialisation.
"""

import keras

# PyTorch BatchNorm momentum 0.1 == Keras momentum 0.9.
BATCHNORM_MOMENTUM = 0.9
TORCH_BATCHNORM_EPSILON = 1e-5


def conv_initializer():
    """The official code's initialisation: N(0, sqrt(2 / (k * k * out_channels)))."""
    return keras.initializers.VarianceScaling(
        2.0, mode="fan_out", distribution="untruncated_normal"
    )


class ConvBlockFactory:
    """Adds named conv, BatchNorm, ReLU and max-pool layers to a functional graph.

    Args:
        use_bias: give convolutions a bias (keras.applications' layout) or
            not (PyTorch's, followed by BatchNorm).
        batchnorm_epsilon: BatchNorm epsilon (PyTorch: 1e-5).
        sync_batchnorm: use `BatchNormalization(synchronized=True)`, which
            averages batch statistics over replicas under `tf.distribute`
            (TensorFlow only: under a JAX distribution they are the global
            batch's anyway, and PyTorch trains on one device).
    """

    def __init__(
        self, use_bias=False, batchnorm_epsilon=TORCH_BATCHNORM_EPSILON, sync_batchnorm=False
    ):
        self.use_bias = bool(use_bias)
        self.batchnorm_epsilon = float(batchnorm_epsilon)
        self.sync_batchnorm = bool(sync_batchnorm)

    def conv(self, x, filters, kernel, name, stride=1, dilation=1):
        """A `Conv2D` padded as PyTorch pads (`padding = dilation * (kernel - 1) // 2`)."""
        if stride > 1 and kernel > 1:
            # Keras "same" pads strided convs asymmetrically; PyTorch does not.
            pad = dilation * (kernel - 1) // 2
            x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
            padding = "valid"
        else:
            padding = "same"
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            dilation_rate=dilation,
            padding=padding,
            use_bias=self.use_bias,
            kernel_initializer=conv_initializer(),
            name=name,
        )(x)

    def batch_norm(self, x, name):
        return keras.layers.BatchNormalization(
            epsilon=self.batchnorm_epsilon,
            momentum=BATCHNORM_MOMENTUM,
            # Keras has it under TensorFlow only; elsewhere there is nothing to synchronise.
            synchronized=self.sync_batchnorm and keras.backend.backend() == "tensorflow",
            name=name,
        )(x)

    @staticmethod
    def relu(x, name):
        return keras.layers.ReLU(name=name)(x)

    def conv_bn_relu(self, x, filters, kernel, name, stride=1, dilation=1):
        """`{name}_conv` -> `{name}_bn` -> `{name}_relu`."""
        x = self.conv(x, filters, kernel, f"{name}_conv", stride=stride, dilation=dilation)
        return self.relu(self.batch_norm(x, f"{name}_bn"), f"{name}_relu")

    @staticmethod
    def max_pool(x, name):
        """3x3 max pool, stride 2, padding 1, as the ResNet stem's."""
        # Zero padding equals PyTorch's -inf padding here: the input is a ReLU
        # output (>= 0) and every window holds at least one real pixel.
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)
