"""An inference graph with fewer operations: `optimize_for_inference(model)`.

    fast = danet_keras.optimize_for_inference(model)
    logits = fast(images)["logits"]          # the same function, fewer FLOPs

The trained model is rewritten, layer by layer, into a functional model that
computes the same outputs in inference mode (up to rounding) with fewer
operations:

- **BatchNorm folding.** A BatchNormalization that only follows a convolution
  is, at inference, a per-channel affine map: `gamma (x - mean) /
  sqrt(var + eps) + beta`. It goes into the convolution's kernel (times the
  scale) and bias, and disappears; so does a ReLU after it, which the
  convolution applies itself.
- **Winograd convolutions** (opt-in: `winograd=True`). Stride-1 3x3
  convolutions (dilated ones too, on space-to-batch sub-images) run as
  Winograd F(4x4, 3x3) (`layers.WinogradConv2D`): 4x fewer multiplications.
- **Sliced convolutions.** A large 3x3 convolution runs in slices of its
  filters or in row bands (`layers.SlicedConv2D`, the same sums) where that
  was measured faster on this machine (`inference.calibration`).
- Dropout, the identity at inference, is dropped.

Nested functional models (DANet's backbone) are flattened into one graph.
The other layers are copied with their weights, under the original names,
so `get_layer("position_attention")` still finds the attention.

Which levers win was measured side by side (`python benchmarks/vs_pytorch.py
--parts levers bf16`); the defaults are the winners (see the README's
performance section).
"""

import functools
import platform

import keras
import numpy as np
from keras import tree

from danet_keras.inference.calibration import WHOLE, convolution_cut
from danet_keras.inference.keras_internals import is_functional, packed_like_model, run_graph
from danet_keras.layers.sliced_conv import BANDS, SlicedConv2D
from danet_keras.layers.winograd import TILE_SIZES, WinogradConv2D
from danet_keras.utils.backends import keras_backend, require_tensorflow_backend
from danet_keras.utils.cpu import onednn_turned_off

# Layers that are the identity in inference mode.
INFERENCE_IDENTITIES = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
# DANet attributes that code reading a model (evaluation, inference, exports) may ask for.
_KEPT_ATTRIBUTES = ("num_classes", "align_corners", "class_names", "palette")
WINOGRAD_CHOICES = ("auto", True, False)


def onednn_enabled():
    """Whether this process's TensorFlow runs oneDNN's CPU kernels (x86, not turned off).

    The Winograd graph runs with either kernels; it is faster than conv2d with
    oneDNN's (512 -> 512 channels at 64x64: 0.68x) and slower with Eigen's
    (1.1-1.3x), measured on TF 2.21.
    """
    if onednn_turned_off():
        return False
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def winograd_pays():
    """Whether `winograd="auto"` turns Winograd on in this process: where oneDNN's kernels run.

    Against the model with BatchNormalization folded alone, DANet-ResNet50 at
    512x512 with Winograd took 0.71x-0.93x of the time on 2 AVX-512 cores (two
    machines), 0.56x on the same cores with oneDNN capped at AVX2
    (`ONEDNN_MAX_CPU_ISA=AVX2`), but 1.17x on an AVX2-only AMD EPYC (issue 23);
    on TensorFlow's own (Eigen) kernels it is slower. The ISA alone does not
    decide it, so only the last is a rule. Never under another Keras backend:
    `WinogradConv2D` is TensorFlow code.
    """
    return keras_backend() == "tensorflow" and onednn_enabled()


def winograd_choice(winograd=False):
    """One line: whether `optimize_for_inference(winograd=...)` uses Winograd here, and why."""
    if winograd is False:
        return (
            "winograd=False (the default): off; winograd=True trades memory (4x the 3x3 "
            "kernels, 1.5x a served DANet-R50's peak) for speed on some CPUs"
        )
    if winograd is True:
        return "winograd=True: on, as asked"
    backend = keras_backend()
    if backend != "tensorflow":
        return f"winograd='auto': off (Winograd is TensorFlow code; this process runs {backend})"
    if not winograd_pays():
        return "winograd='auto': off (TensorFlow's own kernels: Winograd is slower there)"
    return "winograd='auto': on in float32 (oneDNN's kernels)"


class _GraphFacts:
    """Each node of a (flattened) functional model and the nodes that read each tensor.

    The graph is run on its own tensors (`run_graph`), so a nested model's
    nodes read the outer graph's tensors and consumers are counted across the
    nesting.
    """

    def __init__(self, model):
        self.nodes = []
        self.consumers = {}

        def record(node, args, kwargs):
            values = tree.flatten((args, kwargs))
            tensors = [value for value in values if isinstance(value, keras.KerasTensor)]
            self.nodes.append(node)
            for tensor in tensors:
                self.consumers.setdefault(id(tensor), []).append(node)
            return node.outputs

        outputs = run_graph(model, list(model.inputs), record)
        self.output_ids = {id(tensor) for tensor in outputs}


def _plain_conv(layer):
    """A Conv2D whose output is kernel * x (+ bias): no activation, no groups, NHWC."""
    config = layer.get_config()
    return (
        type(layer) is keras.layers.Conv2D
        and config["activation"] == "linear"
        and config.get("groups", 1) == 1
        and config["data_format"] == "channels_last"
    )


def _foldable_batchnorm(layer):
    return (
        type(layer) is keras.layers.BatchNormalization
        and layer.axis in (-1, 3)
        and not getattr(layer, "renorm", False)
    )


def fold_batchnorm(kernel, bias, batchnorm):
    """Kernel and bias of a convolution followed by an inference-mode BatchNormalization.

    `BN(conv(x) + b) = s * conv(x) + s * (b - mean) + beta` with
    `s = gamma / sqrt(var + eps)` per output channel.

    Args:
        kernel: (..., C_out) convolution kernel.
        bias: (C_out,) bias or None.
        batchnorm: a built `keras.layers.BatchNormalization` (last axis).

    Returns:
        (kernel, bias) float32 arrays, computed in float64.
    """
    channels = kernel.shape[-1]
    gamma = np.asarray(batchnorm.gamma, np.float64) if batchnorm.scale else np.ones(channels)
    beta = np.asarray(batchnorm.beta, np.float64) if batchnorm.center else np.zeros(channels)
    mean = np.asarray(batchnorm.moving_mean, np.float64)
    variance = np.asarray(batchnorm.moving_variance, np.float64)
    scale = gamma / np.sqrt(variance + batchnorm.epsilon)
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64)
    kernel = np.asarray(kernel, np.float64) * scale
    return np.float32(kernel), np.float32((bias - mean) * scale + beta)


def _plain_relu(layer):
    """A ReLU layer computing max(x, 0), which a convolution can apply itself."""
    if type(layer) is keras.layers.ReLU:
        config = layer.get_config()
        return (
            config["max_value"] is None and not config["negative_slope"] and not config["threshold"]
        )
    return type(layer) is keras.layers.Activation and layer.get_config()["activation"] == "relu"


def _winograd_dilation(config):
    """The dilation of a conv that WinogradConv2D can run, else None."""
    dilation = tuple(config["dilation_rate"])
    if (
        tuple(config["kernel_size"]) == (3, 3)
        and tuple(config["strides"]) == (1, 1)
        and config["padding"] == "same"
        and dilation[0] == dilation[1]
    ):
        return dilation[0]
    return None


def _compute_dtype(policy, layer):
    name = policy if isinstance(policy, str) else getattr(policy, "name", None)
    if name is None:
        return layer.compute_dtype
    return keras.DTypePolicy(name).compute_dtype


class _Rewriter:
    """Builds the inference graph of one model (see `optimize_for_inference`)."""

    def __init__(self, model, fold, winograd, tile_size, dilated, dtype_policy, sliced_convs):
        self.facts = _GraphFacts(model)
        self.sliced_convs = sliced_convs
        self.winograd = winograd
        self.winograd_dilated = dilated
        self.tile_size = tile_size
        self.dtype_policy = dtype_policy
        self.identities = set()
        self.convs = {}  # id(conv node) -> (kernel, bias) float32
        self.relu_nodes = {}  # id(conv node) -> the ReLU node it absorbs
        self._plan(fold)

    # === Plan: what becomes of each node ===
    def _plan(self, fold):
        for node in self.facts.nodes:
            layer = node.operation
            if isinstance(layer, INFERENCE_IDENTITIES):
                self.identities.add(id(node))
            if not _plain_conv(layer):
                continue
            kernel = np.asarray(layer.kernel, np.float32)
            bias = np.asarray(layer.bias, np.float32) if layer.use_bias else None
            output = node.outputs[0]
            users = self._sole_user(output)
            if fold and users is not None and _foldable_batchnorm(users.operation):
                kernel, bias = fold_batchnorm(kernel, bias, users.operation)
                self.identities.add(id(users))
                output = users.outputs[0]
                users = self._sole_user(output)
            if fold and users is not None and _plain_relu(users.operation):
                self.relu_nodes[id(node)] = users
                self.identities.add(id(users))
            self.convs[id(node)] = (kernel, bias)

    def _sole_user(self, tensor):
        """The node that alone reads `tensor` (not a model output), else None."""
        users = self.facts.consumers.get(id(tensor), [])
        if len(users) == 1 and id(tensor) not in self.facts.output_ids:
            return users[0]
        return None

    # === Rebuild ===
    def _policy(self, layer, node):
        if self.dtype_policy is None or any(id(t) in self.facts.output_ids for t in node.outputs):
            # Output layers keep theirs (DANet's logits are float32).
            return layer.dtype_policy
        return self.dtype_policy

    def _clone(self, layer, node, args, kwargs):
        config = layer.get_config()
        config["dtype"] = self._policy(layer, node)
        try:
            clone = layer.__class__.from_config(config)
        except (TypeError, ValueError):
            # Not rebuildable from its config (a Lambda in safe mode): shared as it is.
            return layer(*args, **kwargs)
        outputs = clone(*args, **kwargs)
        clone.set_weights(layer.get_weights())
        return outputs

    def _use_winograd(self, dilation, policy, layer):
        if self.winograd is False or dilation is None:
            return False
        if dilation > 1 and not self.winograd_dilated:
            return False
        if self.winograd == "auto":
            # float32 only: in 16-bit floats the transforms' rounding shows (opt-in).
            return _compute_dtype(policy, layer) == "float32" and winograd_pays()
        return True

    def _cut(self, layer, kernel, config, policy):
        """(filter slices, row bands) of a direct convolution (`SlicedConv2D`)."""
        if self.sliced_convs is None:
            return WHOLE
        if isinstance(self.sliced_convs, dict):
            return tuple(self.sliced_convs.get(layer.name, WHOLE))
        if config["padding"] != "same" or _compute_dtype(policy, layer) != "float32":
            return WHOLE  # "auto" measures float32 "same" convolutions only
        return convolution_cut(
            kernel.shape[2],
            kernel.shape[3],
            tuple(config["kernel_size"]),
            tuple(config["strides"]),
            tuple(config["dilation_rate"]),
        )

    def _conv(self, node, x, kernel, bias, name):
        layer = node.operation
        config = layer.get_config()
        policy = self._policy(layer, node)
        activation = "relu" if id(node) in self.relu_nodes else None
        dilation = _winograd_dilation(config)
        if self._use_winograd(dilation, policy, layer):
            conv = WinogradConv2D.from_kernel(
                kernel,
                bias,
                tile_size=self.tile_size,
                dilation_rate=dilation,
                activation=activation,
                name=name,
                dtype=policy,
            )
            return conv(x)
        slices, bands = self._cut(layer, kernel, config, policy)
        kind = keras.layers.Conv2D
        if (slices, bands) != WHOLE:
            kind = functools.partial(SlicedConv2D, slices=slices, bands=bands)
        conv = kind(
            kernel.shape[-1],
            config["kernel_size"],
            strides=config["strides"],
            padding=config["padding"],
            dilation_rate=config["dilation_rate"],
            use_bias=bias is not None,
            activation=activation,
            name=name,
            dtype=policy,
        )
        outputs = conv(x)
        conv.set_weights([np.float32(kernel)] + ([] if bias is None else [np.float32(bias)]))
        return outputs

    def visit(self, node, args, kwargs):
        layer = node.operation
        if id(node) in self.identities:
            return args[0]
        if id(node) in self.convs:
            # Popped: each folded kernel is held only until its layer exists.
            kernel, bias = self.convs.pop(id(node))
            return self._conv(node, args[0], kernel, bias, layer.name)
        return self._clone(layer, node, args, kwargs)


def _valid_cuts(sliced_convs):
    """{layer name: (slices, bands)} with integer slices >= 1 and bands 1 or 2."""
    return isinstance(sliced_convs, dict) and all(
        isinstance(cut, (tuple, list))
        and len(cut) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in cut)
        and cut[0] >= 1
        and cut[1] in BANDS
        for cut in sliced_convs.values()
    )


def optimize_for_inference(
    model,
    fold_batchnorm=True,
    winograd=False,
    winograd_tile_size=4,
    winograd_dilated=True,
    dtype_policy=None,
    sliced_convs="auto",
):
    """A functional model computing `model`'s inference outputs with fewer operations.

    Args:
        model: a functional Keras model (e.g. `danet_keras.DANet`); nested
            functional models are flattened.
        fold_batchnorm: fold BatchNormalization into the convolution before it.
        winograd: run stride-1 3x3 convolutions as Winograd F(m x m, 3x3):
            False (default), True, or `"auto"`: where the compute dtype is
            float32 and this process runs oneDNN's kernels (`winograd_pays`).
            Off by default because it costs memory on every CPU and wins
            time on some only: its kernels are 4x the 3x3 ones and its
            transformed inputs 2.25x (twice held) the convolution's input, so
            a served DANet-ResNet50 peaked at 1.50x the plain model's memory
            at 1024x2048 (0.84x without; `benchmarks/serving_memory.py`),
            while it took 0.71x-0.93x of folding alone's time on AVX-512
            cores and 1.17x on an AVX2-only EPYC (`winograd_pays`). In
            bfloat16 its rounding shows: 0.78x of the bfloat16
            DANet-ResNet50's time at 512x512 (0.91x with folding alone), at
            99.6-99.7% argmax agreement with float32 on trained models instead
            of 99.8-99.9% (layers/winograd.py). `danet-keras info` prints the
            choice.
        winograd_tile_size: m, 4 (default: 4x fewer multiplications) or 2
            (2.25x, 20x smaller rounding).
        winograd_dilated: also dilated 3x3 convolutions (on their
            space-to-batch sub-images); False keeps them direct.
        dtype_policy: None keeps every layer's dtype policy; a policy name
            (`"mixed_bfloat16"`) gives it to every layer except those that
            produce the model's outputs (DANet's float32 logits).
        sliced_convs: hand large direct convolutions to the kernel library
            cut into slices of their filters or bands of rows
            (`layers.SlicedConv2D`, the same sums) where that is faster on
            this machine: `"auto"` (default) measures it once per machine and
            convolution shape (float32, "same"-padded, 3x3 with enough work)
            and caches the choice (`inference.calibration`: on an AVX-512
            CPU DANet-ResNet50's two 2048-channel head convolutions took
            0.66x-0.71x of their time in 8 filter slices, on oneDNN capped at
            AVX2 4x, but 0.61x in 2 row bands); None: never; or
            {layer name: (slices, bands)}.

    Returns:
        A functional `keras.Model` with the same inputs and output structure,
        for inference only (dropout removed; with `fold_batchnorm`, every
        BatchNormalization that follows a convolution alone is folded).
    """
    if winograd not in WINOGRAD_CHOICES:
        raise ValueError(f"`winograd` must be one of {WINOGRAD_CHOICES}, got {winograd!r}.")
    if winograd_tile_size not in TILE_SIZES:
        raise ValueError(
            f"`winograd_tile_size` must be one of {TILE_SIZES}, got {winograd_tile_size!r}."
        )
    if not (sliced_convs in ("auto", None) or _valid_cuts(sliced_convs)):
        raise ValueError(
            "`sliced_convs` must be 'auto', None or {layer name: (slices, bands)}, "
            f"got {sliced_convs!r}."
        )
    if winograd is True:
        require_tensorflow_backend(
            "winograd=True", "winograd='auto' or False folds BatchNormalization alone"
        )
    if not is_functional(model):
        raise ValueError(
            "optimize_for_inference needs a functional Keras model (such as danet_keras.DANet), "
            f"got {type(model).__name__}."
        )
    rewriter = _Rewriter(
        model,
        fold_batchnorm,
        winograd,
        winograd_tile_size,
        winograd_dilated,
        dtype_policy,
        sliced_convs,
    )
    inputs = [
        keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=tensor.name)
        for tensor in model.inputs
    ]
    outputs = run_graph(model, inputs, rewriter.visit)
    inputs, outputs = packed_like_model(model, inputs, outputs)
    optimized = keras.Model(inputs=inputs, outputs=outputs, name=f"{model.name}_inference")
    for attribute in _KEPT_ATTRIBUTES:
        if hasattr(model, attribute):
            setattr(optimized, attribute, getattr(model, attribute))
    return optimized


def _computes_in_float32(model):
    """Whether every layer, nested models' too, computes in float32 (inputs aside)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.compute_dtype != "float32":
            return False
        if isinstance(layer, keras.Model) and not _computes_in_float32(layer):
            return False
    return True


def inference_model(model, optimize=True, dtype_policy=None, **options):
    """The model an exporter or `predict` runs: optimised and/or in another precision.

    Args:
        model: the Keras model.
        optimize: apply `optimize_for_inference` (BatchNorm folding,
            sliced convolutions where they were measured faster).
        dtype_policy: a policy name such as `"mixed_bfloat16"`: the model is
            rebuilt in it, optimised or not. None: float32. A model built
            under a mixed policy (`mixed_float16` to train on a GPU) is rebuilt
            in float32 from its weights, which are float32 already: float16
            arithmetic is slow on CPUs and its rounding would reach the
            exported outputs.
        **options: further `optimize_for_inference` arguments (e.g.
            `winograd=False`).

    Returns:
        `model` itself when there is nothing to do, else the rebuilt model.
    """
    if dtype_policy is None and not _computes_in_float32(model):
        dtype_policy = "float32"
    if not optimize and dtype_policy is None:
        return model
    if not optimize:
        options = dict(options, fold_batchnorm=False, winograd=False, sliced_convs=None)
    return optimize_for_inference(model, dtype_policy=dtype_policy, **options)
