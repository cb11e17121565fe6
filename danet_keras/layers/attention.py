"""The two self-attention modules of DANet (Fu et al., CVPR 2019, section 3).

Both layers work on NHWC feature maps and are exact re-implementations of the
official PyTorch modules (`PAM_Module` and `CAM_Module` in
`encoding/nn/da_att.py` of github.com/junfu1115/DANet), so that converted
weights give the same numbers.
"""

import keras
import tensorflow as tf
from keras import ops

# Energy elements (query positions x key positions x batch) that one block of
# the chunked position attention may hold: 2**24 float32 values are 64 MiB.
DEFAULT_ENERGY_BUDGET = 2**24


def _flatten_positions(x):
    """(B, H, W, C) -> (B, H*W, C); positions flattened row-major (h, w)."""
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))


def _to_blocks(x, block):
    """(B, N, C) -> (blocks, B, block, C); the last block padded with zero rows."""
    batch, positions, width = ops.shape(x)
    num_blocks = (positions + block - 1) // block
    x = ops.pad(x, [[0, 0], [0, num_blocks * block - positions], [0, 0]])
    return ops.transpose(ops.reshape(x, (batch, num_blocks, block, width)), (1, 0, 2, 3))


def _from_blocks(blocks, positions):
    """(blocks, B, block, C) -> (B, positions, C): `_to_blocks` undone, padding dropped."""
    shape = ops.shape(blocks)
    merged = ops.reshape(ops.transpose(blocks, (1, 0, 2, 3)), (shape[1], -1, shape[3]))
    return merged[:, :positions, :]


def _scan_blocks(step, carry, blocks, output_dtype):
    """Runs `step(carry, block) -> (carry, output)` over the blocks, one after another.

    One block at a time is what bounds the memory to one block's energy:
    `lax.scan` under JAX, a Python loop under PyTorch, a while loop under
    TensorFlow (`_tf_scan_blocks`).

    Args:
        step: the loop body.
        carry: tuple of tensors passed from one block to the next.
        blocks: tensor, or tuple of tensors, whose first axis is the block.
        output_dtype: dtype of `step`'s output.

    Returns:
        `(carry, outputs)`: the last carry, and the outputs stacked on a new
        first axis.
    """
    if keras.backend.backend() == "tensorflow":
        return _tf_scan_blocks(step, carry, blocks, output_dtype)
    return ops.scan(step, carry, blocks)


def _tf_scan_blocks(step, carry, blocks, output_dtype):
    """`_scan_blocks` under TensorFlow: a while loop over a block count known at run time.

    Not `keras.ops.scan`: under TensorFlow its outputs must have the carry's
    shape. `parallel_iterations=1` runs one block at a time; the loop has
    gradients and lowers to TFLite builtins and ONNX's Loop.
    """
    num_blocks = ops.shape(tf.nest.flatten(blocks)[0])[0]

    def body(index, carry, outputs):
        block = tf.nest.map_structure(lambda x: x[index], blocks)
        carry, output = step(carry, block)
        return index + 1, carry, outputs.write(index, output)

    _, carry, outputs = tf.while_loop(
        lambda index, *_: index < num_blocks,
        body,
        (tf.zeros_like(num_blocks), carry, tf.TensorArray(output_dtype, size=num_blocks)),
        parallel_iterations=1,
    )
    return carry, outputs.stack()


@keras.saving.register_keras_serializable(package="danet_keras")
class PositionAttention(keras.layers.Layer):
    """Position attention module (PAM): every position attends to every position.

    With A the input (B x H x W x C) and N = H * W positions:

        Q = A W_q + b_q,  K = A W_k + b_k   (1x1 convolutions to C / reduction)
        V = A W_v + b_v                     (1x1 convolution to C)
        s_ji = exp(Q_i . K_j) / sum_i exp(Q_i . K_j)     (paper eq. 1)
        E_j = alpha * sum_i s_ji V_i + A_j               (paper eq. 2)

    Written with queries as rows, the attention of query position j is a
    softmax over all key positions i. There is no 1/sqrt(d) scaling (as in the
    official code). `alpha` (called `gamma` in the official code and here) is a
    scalar initialised to zero, so a fresh layer is the identity.

    The N x N attention matrix is never held whole when it is large: queries
    are processed in blocks (the softmax runs over keys, one query at a time,
    so blocking queries is exact). Under TensorFlow, with a size known at
    trace time the blocks are unrolled into a chain of plain ops (what
    TFLite, its int8 calibrator and GPU delegates need); with a dynamic size
    they run in a graph loop (one block at a time). Both trace into
    SavedModel, have gradients and hold one block's energy at a time. Under
    JAX and PyTorch the blocks always loop (`keras.ops.scan`: `lax.scan`, a
    Python loop), one at a time as well.

    Training memory: autodiff would keep every block's softmax for the
    backward pass, N x N values per image again. With `recompute` the blocked
    core out = softmax(Q K^T) V has a hand-written gradient that recomputes
    each block's softmax P = softmax(Q_b K^T) from Q, K, V, block after block
    (upstream gradient dO_b of the block's output):

        dV += P^T dO_b,  dP = dO_b V^T,  dS = P * (dP - rowsum(dP * P)),
        dQ_b = dS K,     dK += dS^T Q_b

    so only Q, K, V (N x C) are kept between the forward and backward passes
    and the backward pass holds one (B x block x N) block at a time. The
    projections, biases, `gamma` and the residual keep their usual autodiff.
    The gradient is `keras.ops.custom_gradient`'s on every backend (under
    PyTorch an `autograd.Function`, whose forward records nothing).

    Args:
        reduction: int, channel reduction of the query and key projections
            (official: 8, so C / 8 channels).
        block_size: int or None. Number of query positions per block. `None`
            chooses it from `energy_budget`: one block when the whole
            (B x N x N) energy fits, else the largest block that fits.
        energy_budget: int, the number of energy elements one block may hold
            when `block_size` is None.
        recompute: bool. If True (default), the gradient of the blocked
            attention recomputes each block's softmax instead of keeping it
            from the forward pass: O(N x block) training memory instead of
            O(N^2), at the cost of computing Q K^T twice. The forward pass is
            the same either way; False gives plain autodiff.
        kernel_initializer: initializer of the three projection kernels.
        bias_initializer: initializer of the three projection biases.
        gamma_initializer: initializer of `gamma` (zeros, as the paper).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, H, W, C) feature map.
        return_attention_scores: bool. If True, also returns the attention
            map as (B, H, W, H, W): entry [b, h, w, h', w'] is how much query
            position (h, w) attends to key position (h', w'). This holds the
            whole N x N matrix; use it for visualisation on small maps
            (`query_attention`: the rows of chosen query positions only).

    Returns:
        The output E, same shape as `inputs`; with `return_attention_scores`,
        the tuple `(E, attention)`.
    """

    def __init__(
        self,
        reduction=8,
        block_size=None,
        energy_budget=DEFAULT_ENERGY_BUDGET,
        recompute=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        gamma_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"`reduction` must be a positive integer, got {reduction}.")
        if block_size is not None and int(block_size) < 1:
            raise ValueError(f"`block_size` must be None or a positive integer, got {block_size}.")
        if int(energy_budget) < 1:
            raise ValueError(f"`energy_budget` must be a positive integer, got {energy_budget}.")
        self.reduction = int(reduction)
        self.block_size = None if block_size is None else int(block_size)
        self.energy_budget = int(energy_budget)
        self.recompute = bool(recompute)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("PositionAttention needs a known channel count (last axis).")
        key_channels = max(1, channels // self.reduction)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})

        def projection(name, units):
            kernel = self.add_weight(
                name=f"{name}_kernel",
                shape=(channels, units),
                initializer=self.kernel_initializer,
            )
            bias = self.add_weight(
                name=f"{name}_bias", shape=(units,), initializer=self.bias_initializer
            )
            return kernel, bias

        self.query_kernel, self.query_bias = projection("query", key_channels)
        self.key_kernel, self.key_bias = projection("key", key_channels)
        self.value_kernel, self.value_bias = projection("value", channels)
        self.gamma = self.add_weight(name="gamma", shape=(), initializer=self.gamma_initializer)

    def _project(self, x):
        query = ops.matmul(x, self.query_kernel) + self.query_bias
        key = ops.matmul(x, self.key_kernel) + self.key_bias
        value = ops.matmul(x, self.value_kernel) + self.value_bias
        return query, key, value

    @staticmethod
    def _attention_weights(query, key):
        """P = softmax(Q K^T) over the keys, (B, queries, N); the softmax in float32."""
        energy = ops.einsum("bqc,bkc->bqk", query, key)
        return ops.softmax(ops.cast(energy, "float32"), axis=-1)

    @staticmethod
    def _attend(query, key, value):
        """softmax(Q K^T) V for one block of queries, and the float32 weights."""
        attention = PositionAttention._attention_weights(query, key)
        return ops.einsum("bqk,bkc->bqc", ops.cast(attention, value.dtype), value), attention

    @staticmethod
    def _attend_gradients(query_block, key, value, grad_block):
        """Gradients of one query block's output, from its recomputed softmax.

        With P = softmax(Q_b K^T) and dO_b the upstream gradient of O_b = P V:

            dV_b = P^T dO_b,  dP = dO_b V^T,  dS = P * (dP - rowsum(dP * P)),
            dQ_b = dS K,      dK_b = dS^T Q_b

        The matmuls run in the inputs' dtype and the softmax terms in float32,
        as autodiff of `_attend` would.

        Returns:
            `(dQ_b, dK_b, dV_b)`: dQ_b in the queries' dtype; dK_b and dV_b,
            this block's share of sums over all blocks, in float32.
        """
        attention = PositionAttention._attention_weights(query_block, key)
        # Einsums name the contracted axes: no transposed operand to copy.
        grad_value = ops.einsum("bqk,bqc->bkc", ops.cast(attention, value.dtype), grad_block)
        grad_attention = ops.cast(ops.einsum("bqc,bkc->bqk", grad_block, value), "float32")
        grad_energy = attention * (
            grad_attention - ops.sum(grad_attention * attention, axis=-1, keepdims=True)
        )
        grad_energy = ops.cast(grad_energy, query_block.dtype)
        grad_query = ops.einsum("bqk,bkc->bqc", grad_energy, key)
        grad_key = ops.einsum("bqk,bqc->bkc", grad_energy, query_block)
        return grad_query, ops.cast(grad_key, "float32"), ops.cast(grad_value, "float32")

    def _block_size(self, batch, positions):
        """Query rows per block; Python ints in, Python int out (else tensors)."""
        if isinstance(batch, int) and isinstance(positions, int):
            if self.block_size is not None:
                return min(positions, self.block_size)
            return min(positions, max(self.energy_budget // max(batch * positions, 1), 1))
        if self.block_size is not None:
            return ops.minimum(positions, self.block_size)
        rows = ops.maximum(self.energy_budget // ops.maximum(batch * positions, 1), 1)
        return ops.minimum(positions, rows)

    def _unrolled_block_size(self, query):
        """The block size when the blocks unroll (TensorFlow, static shape), else None.

        Only TensorFlow's graphs need the unrolled chain: TFLite's int8
        calibrator and GPU delegates cannot take a loop. JAX and PyTorch loop
        (`_scan_blocks`) whatever the shape.
        """
        if keras.backend.backend() != "tensorflow":
            return None
        batch, positions = query.shape[0], query.shape[1]
        if isinstance(batch, int) and isinstance(positions, int):
            return self._block_size(batch, positions)
        return None

    def _blocked_attention(self, query, key, value):
        block = self._unrolled_block_size(query)
        if block is not None:
            return self._unrolled_attention(query, key, value, block)
        return self._looped_attention(query, key, value)

    def _blocked_gradients(self, query, key, value, grad):
        """(dQ, dK, dV) of the blocked attention, one recomputed block at a time."""
        block = self._unrolled_block_size(query)
        if block is not None:
            grads = self._unrolled_gradients(query, key, value, grad, block)
        else:
            grads = self._looped_gradients(query, key, value, grad)
        grad_query, grad_key, grad_value = grads
        return grad_query, ops.cast(grad_key, key.dtype), ops.cast(grad_value, value.dtype)

    def _chunked_attention(self, query, key, value):
        if not self.recompute:
            return self._blocked_attention(query, key, value)

        @ops.custom_gradient
        def attend(query, key, value):
            # Unwatched inputs: no tape (TensorFlow's, eager or in a graph)
            # records the forward blocks, so none keeps their softmaxes alive.
            inputs = [ops.stop_gradient(tensor) for tensor in (query, key, value)]
            outputs = self._blocked_attention(*inputs)

            # TensorFlow and JAX pass the upstream gradient alone, PyTorch the
            # inputs and `upstream=` (keras.ops.custom_gradient's convention).
            def gradient(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return self._blocked_gradients(query, key, value, upstream)

            return outputs, gradient

        return attend(query, key, value)

    def _unrolled_attention(self, query, key, value, block):
        """TensorFlow, static shapes: one graph node chain per block.

        Used whenever the size is known at trace time (eager calls, TFLite and
        fixed-size exports): it converts to plain builtin ops, which the int8
        calibrator and GPU delegates need (they cannot take a while loop).
        Each block waits for the previous one, so a graph executor holds one
        block's energy at a time, as the loop does.
        """
        positions = query.shape[1]
        outputs = []
        for start in range(0, positions, block):
            with tf.control_dependencies(outputs[-1:]):
                query_block = query[:, start : start + block]
            outputs.append(self._attend(query_block, key, value)[0])
        return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=1)

    def _looped_attention(self, query, key, value):
        """A loop over query blocks (`_scan_blocks`), any backend and shape."""
        shape = ops.shape(query)
        block = self._block_size(shape[0], shape[1])

        def step(carry, query_block):
            return carry, self._attend(query_block, key, value)[0]

        _, attended = _scan_blocks(step, (), _to_blocks(query, block), value.dtype)
        return _from_blocks(attended, shape[1])

    def _unrolled_gradients(self, query, key, value, grad, block):
        """TensorFlow, static shapes: the backward blocks as a chain, like the forward's.

        Each block waits for the previous block's gradients, so a graph
        executor holds one block's recomputed softmax at a time; dK and dV
        are running float32 sums.
        """
        positions = query.shape[1]
        grad_queries, grad_key, grad_value = [], None, None
        for start in range(0, positions, block):
            previous = [] if grad_key is None else [grad_queries[-1], grad_key, grad_value]
            # Both slices wait: dP = dO_b V^T does not depend on the queries,
            # and would otherwise be computed for all blocks up front.
            with tf.control_dependencies(previous):
                query_block = query[:, start : start + block]
                grad_block = grad[:, start : start + block]
            grad_query, block_key, block_value = self._attend_gradients(
                query_block, key, value, grad_block
            )
            grad_queries.append(grad_query)
            grad_key = block_key if grad_key is None else grad_key + block_key
            grad_value = block_value if grad_value is None else grad_value + block_value
        if len(grad_queries) > 1:
            grad_query = ops.concatenate(grad_queries, axis=1)
        return grad_query, grad_key, grad_value

    def _looped_gradients(self, query, key, value, grad):
        """A loop over query blocks (`_scan_blocks`), any backend and shape.

        Padded rows have a zero upstream gradient, so their (uniform) softmax
        adds nothing to dK, dV; their dQ rows are dropped.
        """
        shape = ops.shape(query)
        block = self._block_size(shape[0], shape[1])

        def step(carry, blocks):
            grad_key, grad_value = carry
            grad_query, block_key, block_value = self._attend_gradients(
                blocks[0], key, value, blocks[1]
            )
            return (grad_key + block_key, grad_value + block_value), grad_query

        sums = (ops.zeros_like(key, "float32"), ops.zeros_like(value, "float32"))
        blocks = (_to_blocks(query, block), _to_blocks(grad, block))
        (grad_key, grad_value), grad_queries = _scan_blocks(step, sums, blocks, query.dtype)
        return _from_blocks(grad_queries, shape[1]), grad_key, grad_value

    def call(self, inputs, return_attention_scores=False):
        flat = _flatten_positions(inputs)
        query, key, value = self._project(flat)
        if return_attention_scores:
            attended, attention = self._attend(query, key, value)
        else:
            attended = self._chunked_attention(query, key, value)
        attended = ops.reshape(attended, ops.shape(inputs))
        outputs = self.gamma * attended + inputs
        if not return_attention_scores:
            return outputs
        shape = ops.shape(inputs)
        attention = ops.reshape(attention, (shape[0], shape[1], shape[2], shape[1], shape[2]))
        return outputs, attention

    def query_attention(self, inputs, query_positions):
        """The attention weights of chosen query positions over every key position.

        For query position j (a pixel of the input) and every key position i,
        with the layer's own projections and softmax:

            s_ji = exp(Q_j . K_i) / sum_i exp(Q_j . K_i)     (paper eq. 1)

        the weights of E_j = alpha * sum_i s_ji V_i + A_j (paper eq. 2): where
        pixel j looks. These are the rows of the attention that
        `call(..., return_attention_scores=True)` returns, computed for the
        chosen queries only: O(P x N) memory where the whole map is N x N.

        Args:
            inputs: (B, H, W, C) feature map with a known H and W (the
                layer's input).
            query_positions: (row, column) cells of the feature map, the P
                query positions.

        Returns:
            float32 (B, P, H, W): map [b, p] holds the weights that query
            position `query_positions[p]` gives to every (h, w); each map
            sums to 1.

        Raises:
            ValueError: no query position, or one outside the H x W map.
        """
        _, height, width, _ = inputs.shape
        cells = [(int(row), int(column)) for row, column in query_positions]
        if not cells:
            raise ValueError("`query_positions` must hold at least one (row, column) cell.")
        outside = [cell for cell in cells if not (0 <= cell[0] < height and 0 <= cell[1] < width)]
        if outside:
            raise ValueError(f"query positions {outside} are outside the {height}x{width} map.")
        query, key, _ = self._project(_flatten_positions(inputs))
        chosen = ops.take(query, [row * width + column for row, column in cells], axis=1)
        weights = self._attention_weights(chosen, key)
        return ops.reshape(weights, (-1, len(cells), height, width))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "block_size": self.block_size,
                "energy_budget": self.energy_budget,
                "recompute": self.recompute,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="danet_keras")
class ChannelAttention(keras.layers.Layer):
    """Channel attention module (CAM): every channel attends to every channel.

    With A the input reshaped to C x N (N = H * W positions):

        paper (eq. 3, 4):  x_ji = softmax_i(A_i . A_j),  E_j = beta * sum_i x_ji A_i + A_j

    The official code (and this layer) differs from the paper: the softmax
    is taken over `max_i(energy_j) - energy_ji` instead of `energy_ji`
    (row-wise max of the C x C energy, added by the authors for training
    stability, their issue #106). It changes the function -- channels with
    the *smallest* similarity get the largest weight -- so converted weights
    depend on it. There are no projections; `beta` (`gamma` in the official
    code) is a scalar initialised to zero, so a fresh layer is the identity.

    The C x C energy and the softmax are computed in float32 even under a
    mixed-precision policy: the energy sums N products and overflows float16.

    Args:
        beta_initializer: initializer of `beta` (zeros, as the paper).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, H, W, C) feature map.
        return_attention_scores: bool. If True, also returns the (B, C, C)
            attention map: row c holds the weights channel c gives to every
            channel.

    Returns:
        The output E, same shape as `inputs`; with `return_attention_scores`,
        the tuple `(E, attention)`.
    """

    def __init__(self, beta_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        self.beta = self.add_weight(name="beta", shape=(), initializer=self.beta_initializer)

    def call(self, inputs, return_attention_scores=False):
        flat = ops.cast(_flatten_positions(inputs), "float32")
        energy = ops.einsum("bnc,bnd->bcd", flat, flat)
        energy = ops.max(energy, axis=-1, keepdims=True) - energy
        attention = ops.softmax(energy, axis=-1)
        attended = ops.einsum("bcd,bnd->bnc", attention, flat)
        attended = ops.reshape(ops.cast(attended, inputs.dtype), ops.shape(inputs))
        outputs = self.beta * attended + inputs
        if return_attention_scores:
            return outputs, attention
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["beta_initializer"] = keras.initializers.serialize(self.beta_initializer)
        return config
