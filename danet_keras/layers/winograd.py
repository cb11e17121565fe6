"""3x3 convolutions with fewer multiplications: Winograd's minimal filtering F(m x m, 3 x 3).

A stride-1 3x3 convolution computes each m x m block of outputs from a
(m + 2) x (m + 2) tile of the input (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016):

    Y = A^T [ sum_c (G g_c G^T) * (B^T d_c B) ] A

with g_c the 3x3 kernel of input channel c, d_c the input tile, `*` the
element-wise product and B, G, A fixed small matrices. The channel sum of
element-wise products is, for each of the (m + 2)^2 tile positions, one
matrix product of the transformed tiles (tiles x C_in) with the transformed
kernel (C_in x C_out): (m + 2)^2 / m^2 multiplications per output and input
channel instead of 9: 36 / 16 = 2.25 for F(4x4, 3x3), 4x fewer, and
16 / 4 = 4 for F(2x2, 3x3), 2.25x fewer. The transformed kernel is as much
larger than the 3x3 one: 36 / 9 = 4x (F(4x4)) or 16 / 9 (F(2x2)).

Written with TensorFlow ops, the transforms cost more than the products save
unless they are cheap ops: here the input transform B^T d B is one depthwise
convolution (a (m + 2) x (m + 2) kernel of stride m with channel multiplier
(m + 2)^2, the same for every channel), the products one batched matmul with
the pre-transformed kernel ((m + 2)^2, C_in, C_out), and the output
transform one (m^2 x (m + 2)^2) matmul and a depth-to-space reshape. The
transform's rows and columns as two depthwise convolutions would be 3x fewer
multiplications (and measured 1.5x faster on oneDNN), but they need strides
(m, 1) and (1, m), which TensorFlow's own (Eigen) depthwise kernel refuses:
the graph would fail wherever TensorFlow runs without oneDNN (e.g.
`TF_ENABLE_ONEDNN_OPTS=0`, many model servers), so the equal-stride form
is the one that runs everywhere. Dilated convolutions run the same on the d x d
interleaved sub-images of the input (space-to-batch), which turns a
dilation-d 3x3 convolution into a dilation-1 one with the same zero padding.

Rounding: the transforms have coefficients up to 8 (F(4x4)), so float32
results differ from a direct convolution by ~2e-5 of the output's scale
(F(2x2): ~1e-6). In bfloat16 one F(4x4) convolution of random data is off
by up to ~1e-1 of its scale (a direct one by ~4e-3); through a trained DANet
that became 99.6-99.7% argmax agreement with float32 (99.8-99.9% direct),
which is why `optimize_for_inference` uses Winograd in bfloat16 only when
asked.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# F(m x m, 3 x 3) transform matrices (B^T, G, A^T) for output tiles m = 2, 4,
# with the interpolation points 0, +-1 (m = 2) and 0, +-1, +-2 (m = 4), the
# choice with the smallest coefficients (Lavin & Gray; wincnn).
WINOGRAD_MATRICES = {
    2: (
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (1 / 2, 1 / 2, 1 / 2), (1 / 2, -1 / 2, 1 / 2), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1)),
    ),
    4: (
        (
            (4, 0, -5, 0, 1, 0),
            (0, -4, -4, 1, 1, 0),
            (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0),
            (0, 2, -1, -2, 1, 0),
            (0, 4, 0, -5, 0, 1),
        ),
        (
            (1 / 4, 0, 0),
            (-1 / 6, -1 / 6, -1 / 6),
            (-1 / 6, 1 / 6, -1 / 6),
            (1 / 24, 1 / 12, 1 / 6),
            (1 / 24, -1 / 12, 1 / 6),
            (0, 0, 1),
        ),
        (
            (1, 1, 1, 1, 1, 0),
            (0, 1, -1, 2, -2, 0),
            (0, 1, 1, 4, 4, 0),
            (0, 1, -1, 8, -8, 1),
        ),
    ),
}
TILE_SIZES = tuple(WINOGRAD_MATRICES)
# Transformed-kernel elements computed at a time by `from_kernel` (64 MB of float32).
TRANSFORM_CHUNK_ELEMENTS = 2**24


def winograd_matrices(tile_size):
    """(B^T, G, A^T) of F(tile_size x tile_size, 3 x 3) as float64 arrays."""
    if tile_size not in WINOGRAD_MATRICES:
        raise ValueError(f"`tile_size` must be one of {TILE_SIZES}, got {tile_size!r}.")
    return tuple(np.asarray(m, np.float64) for m in WINOGRAD_MATRICES[tile_size])


def winograd_kernel(kernel, tile_size):
    """The transformed kernel G g G^T of a 3x3 kernel, one matrix per tile position.

    Args:
        kernel: (3, 3, C_in, C_out) array, Keras' layout.
        tile_size: m of F(m x m, 3 x 3).

    Returns:
        float32 ((m + 2)^2, C_in, C_out): entry [i * (m + 2) + j] multiplies
        the transformed input's tile position (i, j). Computed in float32
        (1e-7 relative, far below the transforms' own rounding), which keeps
        a large layer's transient copies small.
    """
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim != 4 or kernel.shape[:2] != (3, 3):
        raise ValueError(f"expected a (3, 3, C_in, C_out) kernel, got shape {kernel.shape}.")
    _, g, _ = winograd_matrices(tile_size)
    g = g.astype(np.float32)
    transformed = np.einsum("ia,abco,jb->ijco", g, kernel, g, optimize=True)
    t = tile_size + 2
    return transformed.reshape(t * t, kernel.shape[2], kernel.shape[3])


@keras.saving.register_keras_serializable(package="danet_keras")
class WinogradConv2D(keras.layers.Layer):
    """A 3x3, stride-1, zero-padded ("same") convolution computed as Winograd F(m x m, 3 x 3).

    The same function as `keras.layers.Conv2D(filters, 3, padding="same",
    dilation_rate=d)` up to rounding (see the module docstring), with 2.25x
    (F(2x2)) to 4x (F(4x4)) fewer multiplications. Its weight is the
    transformed kernel; build one from a 3x3 kernel with `from_kernel`.

    Args:
        filters: output channels.
        tile_size: m, the side of the output tile: 4 (F(4x4, 3x3), 4x fewer
            multiplications) or 2 (F(2x2, 3x3), 2.25x, 20x smaller rounding).
        dilation_rate: dilation of the 3x3 kernel; d > 1 runs the d x d
            interleaved sub-images (space-to-batch) at dilation 1.
        use_bias: add a bias.
        activation: None or an activation applied to the output (`"relu"`).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, H, W, C_in) feature map, any H and W.

    Returns:
        (B, H, W, filters).
    """

    def __init__(
        self, filters, tile_size=4, dilation_rate=1, use_bias=True, activation=None, **kwargs
    ):
        super().__init__(**kwargs)
        winograd_matrices(tile_size)
        if int(filters) < 1 or int(dilation_rate) < 1:
            raise ValueError(
                f"`filters` and `dilation_rate` must be positive, got {filters}, {dilation_rate}."
            )
        self.filters = int(filters)
        self.tile_size = int(tile_size)
        self.dilation_rate = int(dilation_rate)
        self.use_bias = bool(use_bias)
        self.activation = keras.activations.get(activation)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("WinogradConv2D needs a known channel count (last axis).")
        t = self.tile_size + 2
        self.kernel = self.add_weight(
            name="winograd_kernel", shape=(t * t, channels, self.filters), initializer="zeros"
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})

    @classmethod
    def from_kernel(cls, kernel, bias=None, tile_size=4, dilation_rate=1, **kwargs):
        """A built layer computing the convolution with a 3x3 `kernel` (and `bias`).

        Args:
            kernel: (3, 3, C_in, C_out) array.
            bias: None or (C_out,) array.
            tile_size, dilation_rate, **kwargs: constructor arguments.

        Returns:
            A `WinogradConv2D` holding `winograd_kernel(kernel, tile_size)`.
        """
        kernel = np.asarray(kernel)
        layer = cls(
            kernel.shape[3],
            tile_size=tile_size,
            dilation_rate=dilation_rate,
            use_bias=bias is not None,
            **kwargs,
        )
        layer.build((None, None, None, kernel.shape[2]))
        # Output channels a few at a time: the transform's copies stay ~64 MB
        # even for a 2048 -> 1024 convolution (302 MB transformed).
        t = tile_size + 2
        step = max(1, TRANSFORM_CHUNK_ELEMENTS // (t * t * kernel.shape[2]))
        for start in range(0, kernel.shape[3], step):
            part = winograd_kernel(kernel[..., start : start + step], tile_size)
            layer.kernel.value[:, :, start : start + step].assign(part)
        if bias is not None:
            layer.bias.assign(np.asarray(bias, np.float32))
        return layer

    def _input_transform_kernel(self, channels, dtype):
        """The depthwise kernel of B^T d B: [a, b, c, i * t + j] = B^T[i, a] B^T[j, b]."""
        b_t, _, _ = winograd_matrices(self.tile_size)
        t = b_t.shape[0]
        kernel = np.einsum("ia,jb->abij", b_t, b_t).reshape(t, t, 1, t * t)
        # Tiled in the graph: a constant of every channel's copy would be stored in
        # each traced graph (2.6 MB per 512-channel convolution, per signature).
        return tf.tile(ops.convert_to_tensor(kernel, dtype), [1, 1, channels, 1])

    def _winograd(self, x):
        """Dilation-1 "same" convolution of x (B, H, W, C) by tiles."""
        m = self.tile_size
        t = m + 2
        channels = x.shape[-1]
        # Python ints where the shape is static (so is the output's), else tensors.
        batch, height, width = ops.shape(x)[:3]
        tiles_h, tiles_w = (height + m - 1) // m, (width + m - 1) // m
        # One pixel of "same" padding on each side, and zeros up to whole tiles.
        x = tf.pad(x, [[0, 0], [1, tiles_h * m + 1 - height], [1, tiles_w * m + 1 - width], [0, 0]])
        transform = self._input_transform_kernel(channels, x.dtype)
        v = tf.nn.depthwise_conv2d(x, transform, [1, m, m, 1], "VALID")
        # (B, th, tw, C * t * t) -> (t * t, B * th * tw, C): one matrix per tile position.
        v = tf.transpose(tf.reshape(v, [-1, channels, t * t]), [2, 0, 1])
        products = tf.matmul(v, ops.cast(self.kernel, x.dtype))
        _, _, a_t = winograd_matrices(m)
        output_transform = ops.convert_to_tensor(np.kron(a_t, a_t), x.dtype)
        y = tf.matmul(output_transform, tf.reshape(products, [t * t, -1]))
        y = tf.reshape(y, [m, m, batch, tiles_h, tiles_w, self.filters])
        y = tf.reshape(
            tf.transpose(y, [2, 3, 0, 4, 1, 5]), [batch, tiles_h * m, tiles_w * m, self.filters]
        )
        return y[:, :height, :width]

    def call(self, inputs):
        x = inputs
        d = self.dilation_rate
        if d > 1:
            shape = ops.shape(x)
            padding = [[0, (-shape[1]) % d], [0, (-shape[2]) % d]]
            x = tf.space_to_batch(x, [d, d], padding)
        y = self._winograd(x)
        if d > 1:
            y = tf.batch_to_space(y, [d, d], padding)
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "tile_size": self.tile_size,
                "dilation_rate": self.dilation_rate,
                "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
