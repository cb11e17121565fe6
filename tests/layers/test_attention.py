import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.layers import ChannelAttention, PositionAttention

from ..numerics import (
    FLOAT32_EPS,
    KERNEL_ORDER_RTOL,
    assert_close_to_scale,
    skip_bfloat16_where_capped_away,
)

# TF float32 against NumPy float64: the energies are 2-to-16-term dot products
# of values up to ~5, so each carries ~4 eps x 25 = 1.2e-5 of rounding, which
# the softmax passes on as a relative change of the weights; the N-term
# weighted sums add sqrt(N) eps. 1e-5 of the output's scale covers it twice.
REFERENCE_RTOL = 1e-5
# Attention weights are probabilities (scale 1): the energy's absolute
# rounding, 1.2e-5 at most, changes a weight p by p (1 - p) times that.
SCORES_ATOL = 4e-6


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def position_attention_reference(a, wq, bq, wk, bk, wv, bv, alpha):
    """Paper eq. (1)-(2) in NumPy: E_j = alpha * sum_i s_ji V_i + A_j."""
    b, h, w, c = a.shape
    flat = a.reshape(b, h * w, c)
    q, k, v = flat @ wq + bq, flat @ wk + bk, flat @ wv + bv
    s = softmax(np.einsum("bjc,bic->bji", q, k), axis=-1)  # s[b, j, i]: query j, key i
    out = np.einsum("bji,bic->bjc", s, v)
    return (alpha * out + flat).reshape(a.shape), s


def channel_attention_reference(a, beta):
    """Official CAM in NumPy: softmax over (row max - energy), E = beta * X A + A."""
    b, h, w, c = a.shape
    x = a.reshape(b, h * w, c).transpose(0, 2, 1)  # (B, C, N)
    energy = x @ x.transpose(0, 2, 1)
    attention = softmax(energy.max(axis=-1, keepdims=True) - energy, axis=-1)
    out = (attention @ x).transpose(0, 2, 1).reshape(a.shape)
    return beta * out + a, attention


def random_features(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def set_position_weights(layer, channels, alpha, seed=1):
    rng = np.random.default_rng(seed)
    key_channels = channels // layer.reduction
    values = {
        "wq": rng.normal(scale=0.3, size=(channels, key_channels)),
        "bq": rng.normal(scale=0.1, size=(key_channels,)),
        "wk": rng.normal(scale=0.3, size=(channels, key_channels)),
        "bk": rng.normal(scale=0.1, size=(key_channels,)),
        "wv": rng.normal(scale=0.3, size=(channels, channels)),
        "bv": rng.normal(scale=0.1, size=(channels,)),
    }
    values = {k: v.astype("float32") for k, v in values.items()}
    layer.query_kernel.assign(values["wq"])
    layer.query_bias.assign(values["bq"])
    layer.key_kernel.assign(values["wk"])
    layer.key_bias.assign(values["bk"])
    layer.value_kernel.assign(values["wv"])
    layer.value_bias.assign(values["bv"])
    layer.gamma.assign(alpha)
    return values


def test_attention_layers_are_identity_at_initialisation():
    x = random_features((2, 5, 7, 16))
    position = PositionAttention()
    channel = ChannelAttention()
    np.testing.assert_array_equal(position(x), x)
    np.testing.assert_array_equal(channel(x), x)
    assert float(position.gamma.numpy()) == 0.0
    assert float(channel.beta.numpy()) == 0.0


def test_position_attention_matches_numpy_reference():
    x = random_features((2, 5, 7, 16))
    layer = PositionAttention(reduction=8)
    layer.build(x.shape)
    w = set_position_weights(layer, 16, alpha=0.7)
    expected, expected_scores = position_attention_reference(
        x, w["wq"], w["bq"], w["wk"], w["bk"], w["wv"], w["bv"], 0.7
    )
    assert_close_to_scale(layer(x), expected, REFERENCE_RTOL)
    outputs, scores = layer(x, return_attention_scores=True)
    assert_close_to_scale(outputs, expected, REFERENCE_RTOL)
    assert scores.shape == (2, 5, 7, 5, 7)
    np.testing.assert_allclose(
        np.asarray(scores).reshape(2, 35, 35), expected_scores, atol=SCORES_ATOL
    )


def test_query_attention_is_the_forward_pass_attention_of_those_queries():
    x = random_features((2, 5, 7, 16))
    layer = PositionAttention(reduction=8)
    layer.build(x.shape)
    w = set_position_weights(layer, 16, alpha=0.7)
    cells = [(0, 0), (4, 6), (2, 3)]
    weights = np.asarray(layer.query_attention(x, cells))
    assert weights.shape == (2, 3, 5, 7) and weights.dtype == np.float32
    # Probabilities: each map sums to 1 up to float32 rounding of 35 terms.
    np.testing.assert_allclose(weights.sum(axis=(2, 3)), 1.0, atol=35 * FLOAT32_EPS)
    _, scores = layer(x, return_attention_scores=True)
    forward = np.stack([np.asarray(scores)[:, row, column] for row, column in cells], axis=1)
    assert_close_to_scale(weights, forward, KERNEL_ORDER_RTOL, "query_attention vs call")
    _, expected = position_attention_reference(
        x, w["wq"], w["bq"], w["wk"], w["bk"], w["wv"], w["bv"], 0.7
    )
    rows = [row * 7 + column for row, column in cells]
    np.testing.assert_allclose(weights.reshape(2, 3, 35), expected[:, rows], atol=SCORES_ATOL)
    for bad in ([], [(5, 0)], [(0, -1)]):
        with pytest.raises(ValueError, match="query_positions|query positions"):
            layer.query_attention(x, bad)


def test_position_attention_projection_width_follows_reduction():
    layer = PositionAttention(reduction=4)
    layer.build((None, 3, 3, 32))
    assert tuple(layer.query_kernel.shape) == (32, 8)
    assert tuple(layer.key_kernel.shape) == (32, 8)
    assert tuple(layer.value_kernel.shape) == (32, 32)
    assert tuple(layer.gamma.shape) == ()


def test_channel_attention_matches_numpy_reference():
    x = random_features((2, 6, 5, 12))
    layer = ChannelAttention()
    layer.build(x.shape)
    layer.beta.assign(0.6)
    expected, expected_attention = channel_attention_reference(x, 0.6)
    assert_close_to_scale(layer(x), expected, REFERENCE_RTOL)
    outputs, attention = layer(x, return_attention_scores=True)
    assert attention.shape == (2, 12, 12)
    np.testing.assert_allclose(attention, expected_attention, atol=SCORES_ATOL)
    assert_close_to_scale(outputs, expected, REFERENCE_RTOL)


def test_channel_attention_uses_the_max_minus_energy_step():
    # Without the official `max - energy` step the result differs by far
    # more than rounding: the test would catch a paper-literal layer.
    x = random_features((1, 4, 4, 8))
    layer = ChannelAttention()
    layer.build(x.shape)
    layer.beta.assign(1.0)
    b, h, w, c = x.shape
    flat = x.reshape(b, h * w, c).transpose(0, 2, 1)
    paper = softmax(flat @ flat.transpose(0, 2, 1)) @ flat
    paper = paper.transpose(0, 2, 1).reshape(x.shape) + x
    assert np.abs(np.asarray(layer(x)) - paper).max() > 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"block_size": 7},  # 45 positions: 7 blocks, the last one partial
        {"block_size": 1},
        {"block_size": 45},
        {"block_size": 1000},
        {"energy_budget": 300},  # automatic: 300 // (2 * 45) = 3 queries a block
    ],
)
def test_chunked_position_attention_equals_plain(kwargs):
    x = random_features((2, 5, 9, 16))
    plain = PositionAttention()
    plain.build(x.shape)
    set_position_weights(plain, 16, alpha=0.9)
    chunked = PositionAttention(**kwargs)
    chunked.build(x.shape)
    chunked.set_weights(plain.get_weights())
    reference, _ = plain(x, return_attention_scores=True)
    # Static shapes: the unrolled blocks; unknown shapes: the graph loop. Other
    # matmul shapes may get other kernels and summation orders (45 keys, 16
    # channels: ~sqrt(45) eps = 8e-7 relative); 1e-5 of the scale leaves 10x.
    assert_close_to_scale(chunked(x), reference, 1e-5, "unrolled blocks")
    looped = tf.function(chunked, input_signature=[tf.TensorSpec((None, None, None, 16))])
    assert_close_to_scale(looped(x), reference, 1e-5, "looped blocks")


def test_automatic_block_size_limits_the_energy_block():
    layer = PositionAttention(energy_budget=1000)
    # 2 images x 100 positions: 1000 // 200 = 5 query rows per block.
    assert int(layer._block_size(2, 100)) == 5
    # Small maps fit whole: one block of all positions.
    assert int(PositionAttention()._block_size(2, 100)) == 100
    assert int(PositionAttention(block_size=64)._block_size(1, 100)) == 64


def test_chunked_attention_traces_with_unknown_spatial_size():
    layer = PositionAttention(block_size=4)
    layer.build((None, None, None, 16))
    set_position_weights(layer, 16, alpha=0.5)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 16), tf.float32)])
    def run(x):
        return layer(x)

    for shape in [(1, 3, 5, 16), (2, 4, 4, 16)]:
        x = random_features(shape, seed=shape[1])
        reference, _ = layer(x, return_attention_scores=True)
        # Graph loop against eager blocks: see test_chunked_position_attention_equals_plain.
        assert_close_to_scale(run(tf.constant(x)), reference, 1e-5)


def test_static_shapes_unroll_the_blocks_and_dynamic_shapes_loop():
    layer = PositionAttention(block_size=4)
    layer.build((None, None, None, 16))

    def op_types(signature):
        graph = tf.function(layer).get_concrete_function(tf.TensorSpec(signature)).graph
        return {op.type for op in graph.get_operations()}

    static = op_types((1, 3, 5, 16))
    assert not any("While" in t for t in static)
    assert "ConcatV2" in static
    assert any("While" in t for t in op_types((None, None, None, 16)))


def test_gradients_flow_through_the_chunked_loop():
    x = tf.constant(random_features((1, 4, 5, 16)))
    layer = PositionAttention(block_size=3)
    layer.build(x.shape)
    set_position_weights(layer, 16, alpha=0.5)
    variables = [layer.gamma, layer.query_kernel, layer.value_kernel]

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 16))])
    def looped_gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) ** 2)
        return tape.gradient(loss, variables)

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    unrolled = tape.gradient(loss, variables)
    looped = looped_gradients(x)
    for a, b in zip(unrolled, looped):
        assert np.all(np.isfinite(a)) and float(tf.reduce_sum(tf.abs(a))) > 0
        # Two graphs of the same gradient. A gradient element's rounding follows
        # the size of the terms it sums (the whole tensor's scale), not its own
        # value; the backward pass chains ~3x the forward's reductions.
        assert_close_to_scale(a, b, 1e-4, "gradient")


# Gradients of the recomputed blocks against plain autodiff of one block, both
# float32: every gradient element is a reduction over the N = 45 positions (dQ,
# dK, dV) or the B x N = 90 positions (weights), summed in another order (other
# blocks, a running float32 sum over blocks), ~sqrt(90) eps = 1.1e-6 of its
# scale each; the backward chains ~3 of them (dP, the rowsum of dS, dK/dQ) and
# the projection's weight sum: ~4e-6. Measured: at most 2e-7.
RECOMPUTED_GRADIENT_RTOL = 1e-5


def position_gradients(layer, x, cotangent):
    """d sum(layer(x) * cotangent) with respect to x and every trainable weight."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.cast(layer(x), "float32") * cotangent)
    return tape.gradient(loss, [x] + layer.trainable_weights)


def gradient_names(layer):
    return ["inputs"] + [weight.name for weight in layer.trainable_weights]


@pytest.mark.parametrize(
    "signature",
    ["eager", None, (None, None, None, 16), (None, 5, 9, 16)],
    ids=["eager", "unrolled", "looped", "looped_unknown_batch"],
)
@pytest.mark.parametrize(
    "block_size",
    [7, 1, 4, 45],  # 45 positions: 7 -> 7 blocks, the last one 3 rows; 4 -> last 1 row
)
def test_recomputed_gradients_equal_plain_autodiff(block_size, signature):
    x = tf.constant(random_features((2, 5, 9, 16)))
    cotangent = tf.constant(random_features((2, 5, 9, 16), seed=3))
    plain = PositionAttention(recompute=False)  # one block (small map), autodiff
    plain.build(x.shape)
    set_position_weights(plain, 16, alpha=0.8)
    recomputed = PositionAttention(block_size=block_size)
    recomputed.build(x.shape)
    recomputed.set_weights(plain.get_weights())
    assert recomputed.recompute
    expected = position_gradients(plain, x, cotangent)
    # A static size unrolls the blocks (forward and backward; eagerly too);
    # an unknown size (or batch) runs the forward map_fn and the backward loop.
    if signature == "eager":
        actual = position_gradients(recomputed, x, cotangent)
    else:
        input_signature = None if signature is None else [tf.TensorSpec(signature)]
        run = tf.function(
            lambda x: position_gradients(recomputed, x, cotangent),
            input_signature=input_signature,
        )
        actual = run(x)
    names = gradient_names(plain)
    assert len(actual) == len(expected) == 8  # inputs, 3 kernels, 3 biases, gamma
    for name, a, e in zip(names, actual, expected):
        if "key_bias" in name:
            # Exactly zero in exact arithmetic (softmax over keys ignores the
            # constant Q_j . b_k of each row): both are rounding noise of the
            # dK rows it sums, which the key kernel's gradient sums weighted
            # by unit-scale inputs, so compare at that scale.
            scale = np.abs(np.asarray(expected[names.index("key_kernel")])).max()
            assert np.abs(np.asarray(a) - np.asarray(e)).max() <= RECOMPUTED_GRADIENT_RTOL * scale
            continue
        assert float(tf.reduce_max(tf.abs(e))) > 0, name
        assert_close_to_scale(a, e, RECOMPUTED_GRADIENT_RTOL, f"gradient of {name}")


def forward_tensors_used_by_backward(layer, signature):
    """Forward tensors the backward ops read: what a train step keeps between the two.

    Traces loss and `tape.gradient` in one function, as a Keras train step
    does; ops created by `tape.gradient` form the backward pass.
    """
    forward_ops = set()

    @tf.function(input_signature=[tf.TensorSpec(signature)])
    def train_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) ** 2)
        forward_ops.update(tf.compat.v1.get_default_graph().get_operations())
        return tape.gradient(loss, [x] + layer.trainable_weights)

    graph = train_step.get_concrete_function().graph
    backward_ops = [op for op in graph.get_operations() if op not in forward_ops]
    kept = {t.name: t for op in backward_ops for t in op.inputs if t.op in forward_ops}
    return list(kept.values()), backward_ops


def test_backward_pass_keeps_no_energy_block():
    # 45 positions, 16 channels, 2 key channels: a (B, rows, 45) tensor can
    # only be an energy or softmax block.
    batch, positions = 2, 45
    signature = (batch, 5, 9, 16)

    def energy_like(tensors):
        return sorted(t.name for t in tensors if t.shape.rank == 3 and t.shape[-1] == positions)

    autodiff = PositionAttention(block_size=7, recompute=False)
    autodiff.build(signature)
    kept, _ = forward_tensors_used_by_backward(autodiff, signature)
    # Autodiff keeps every block's softmax: 7 blocks, N x N values in all.
    assert len(energy_like(kept)) == 7

    recomputed = PositionAttention(block_size=7)
    recomputed.build(signature)
    kept, backward_ops = forward_tensors_used_by_backward(recomputed, signature)
    assert energy_like(kept) == []
    # What is kept is O(N x C): inputs, projections, Q, K, V.
    assert max(t.shape.num_elements() for t in kept) <= batch * positions * 16
    # The backward pass recomputes the 7 blocks, unrolled as the forward (no loop).
    recomputed_blocks = [op for op in backward_ops if op.type == "Softmax"]
    assert len(recomputed_blocks) == 7
    assert not any("While" in op.type for op in backward_ops)


def energy_blocks_in_sequence(backward_ops, positions):
    """Whether the backward's energy-sized work runs one block after another.

    Ops with a (B, rows, N) output are grouped into blocks by the data edges
    between them (energy -> softmax -> dS <- dP). The blocks run in sequence
    if each block's ops all follow (through data or control edges) every op
    of the block before: then a graph executor holds one block's energies at
    a time, whatever order it picks among ready ops.
    """
    energy_ops = [
        op
        for op in backward_ops
        if op.outputs and op.outputs[0].shape.rank == 3 and op.outputs[0].shape[-1] == positions
    ]
    names = {op.name for op in energy_ops}
    block_of = {name: name for name in names}  # union-find over data edges

    def root(name):
        while block_of[name] != name:
            name = block_of[name]
        return name

    for op in energy_ops:
        for tensor in op.inputs:
            if tensor.op.name in names:
                block_of[root(tensor.op.name)] = root(op.name)
    ancestors = {}

    def ancestors_of(op):
        if op.name not in ancestors:
            ancestors[op.name] = set()
            for parent in [t.op for t in op.inputs] + list(op.control_inputs):
                ancestors[op.name] |= {parent.name} | ancestors_of(parent)
        return ancestors[op.name]

    blocks = {}
    for op in energy_ops:
        blocks.setdefault(root(op.name), []).append(op)
    # Order the blocks by how much precedes them; then check each against the one before.
    ordered = sorted(blocks.values(), key=lambda ops: min(len(ancestors_of(op)) for op in ops))
    for before, after in zip(ordered, ordered[1:]):
        if not all({op.name for op in before} <= ancestors_of(op) for op in after):
            return False
    return len(ordered) > 1


def test_recomputed_backward_blocks_run_one_after_another():
    # 45 positions in blocks of 7: 7 blocks of energy-sized ops in the backward.
    signature = (2, 5, 9, 16)
    recomputed = PositionAttention(block_size=7)
    recomputed.build(signature)
    _, backward_ops = forward_tensors_used_by_backward(recomputed, signature)
    assert energy_blocks_in_sequence(backward_ops, 45)
    # Autodiff's backward blocks are independent: the check tells them apart.
    autodiff = PositionAttention(block_size=7, recompute=False)
    autodiff.build(signature)
    _, backward_ops = forward_tensors_used_by_backward(autodiff, signature)
    assert not energy_blocks_in_sequence(backward_ops, 45)


def test_backward_loop_keeps_nothing_from_the_forward_loop():
    # Unknown size: autodiff of the forward map_fn makes it accumulate every
    # iteration's softmax (extra loop outputs read by the backward loop); the
    # recomputed gradient reads only Q, K, V and runs its own loop.
    signature = (None, None, None, 16)

    def forward_loop_outputs(layer):
        layer.build(signature)
        kept, backward_ops = forward_tensors_used_by_backward(layer, signature)
        assert any("While" in op.type for op in backward_ops)
        return [t for t in kept if "While" in t.op.type]

    assert forward_loop_outputs(PositionAttention(block_size=7, recompute=False))
    assert forward_loop_outputs(PositionAttention(block_size=7)) == []


@skip_bfloat16_where_capped_away()
def test_recomputed_gradient_under_mixed_bfloat16():
    features = random_features((1, 8, 8, 32))
    cotangent = tf.constant(random_features((1, 8, 8, 32), seed=3))
    reference = PositionAttention(recompute=False)
    reference.build(features.shape)
    set_position_weights(reference, 32, alpha=1.0)
    expected = position_gradients(reference, tf.constant(features), cotangent)
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        layer = PositionAttention(block_size=24)  # 64 positions: blocks of 24, 24, 16
        layer.build(features.shape)
        layer.set_weights(reference.get_weights())
        gradients = position_gradients(layer, tf.constant(features), cotangent)
        # Large activations: energies far beyond float16's range (bfloat16 has float32's).
        large = position_gradients(layer, tf.constant(30.0 * features), cotangent)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for name, a, b, e in zip(gradient_names(layer), gradients, large, expected):
        assert a.dtype == b.dtype == "float32", name  # the float32 inputs and variables
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), name
        if "key_bias" in name:  # zero up to rounding: see the float32 test
            continue
        # bfloat16 keeps 8 bits (eps 2**-8 = 3.9e-3): inputs, weights, Q, K, V
        # and the energies are each rounded to it, which the softmax turns
        # into ~1e-2 relative changes of the weights (measured 2.6e-2 at
        # most, autodiff of the same bfloat16 layer alike); 0.1 is ~25 eps.
        assert_close_to_scale(a, e, 0.1, f"bfloat16 gradient of {name}")


@pytest.mark.parametrize("layer_class", [PositionAttention, ChannelAttention])
def test_attention_layers_round_trip_through_config(layer_class):
    kwargs = (
        {"reduction": 4, "block_size": 16, "energy_budget": 4096, "recompute": False}
        if layer_class is PositionAttention
        else {}
    )
    layer = layer_class(name="attention", **kwargs)
    config = layer.get_config()
    clone = layer_class.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is layer_class
    assert restored.get_config() == config


@pytest.mark.parametrize(
    "policy",
    ["mixed_float16", pytest.param("mixed_bfloat16", marks=skip_bfloat16_where_capped_away())],
)
def test_attention_under_mixed_precision_is_finite(policy):
    # Large activations: the channel energy sums N products and overflows
    # float16 unless it is computed in float32.
    x = 30.0 * random_features((1, 16, 16, 32))
    try:
        keras.mixed_precision.set_global_policy(policy)
        position, channel = PositionAttention(), ChannelAttention()
        position.build(x.shape)
        channel.build(x.shape)
        position.gamma.assign(1.0)
        channel.beta.assign(1.0)
        out_p, scores = position(x, return_attention_scores=True)
        out_c = channel(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out_p.dtype == out_c.dtype == policy.split("_")[1]
    assert scores.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(out_p, "float32")))
    assert np.all(np.isfinite(np.asarray(out_c, "float32")))
    # Against the reference on the same rounded inputs: the energy (N products
    # of values ~30) is far beyond float16's range, yet the result is close.
    rounded = np.asarray(keras.ops.cast(x, policy.split("_")[1]), "float64")
    expected, _ = channel_attention_reference(rounded, 1.0)
    relative = np.abs(np.asarray(out_c, "float64") - expected).max() / np.abs(expected).max()
    assert relative < 2e-2


def test_invalid_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="reduction"):
        PositionAttention(reduction=0)
    with pytest.raises(ValueError, match="block_size"):
        PositionAttention(block_size=0)
    with pytest.raises(ValueError):
        PositionAttention()(random_features((2, 3, 16)))
