"""Loading a PyTorch DANet state dict into a Keras `DANet`, and building the model it needs."""

import dataclasses
import os
import warnings

import numpy as np

from danet_keras.models.conversion.checkpoint import read_state_dict
from danet_keras.models.conversion.config import config_from_state_dict, model_config, resolve_arch
from danet_keras.models.conversion.names import ARCH_NAMES, is_ignored, weight_sources
from danet_keras.models.presets import preset_for_checkpoint

# Names listed in one error message before "... and N more".
MAX_LISTED = 12


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What a conversion used, assigned and left out.

    Attributes:
        arch: `"official"` or `"mmseg"`.
        assigned: `(keras weight, checkpoint key)` pairs, one per assigned weight.
        missing: Keras weights without a checkpoint tensor (left unchanged).
        unused: checkpoint tensors no Keras weight took.
        ignored: tensors that no segmentation computation reads
            (`num_batches_tracked`, the official backbone's ImageNet
            classifier `pretrained.fc`).
    """

    arch: str
    assigned: tuple
    missing: tuple
    unused: tuple
    ignored: tuple

    def __str__(self):
        text = (
            f"{ARCH_NAMES[self.arch]} checkpoint: {len(self.assigned)} Keras weights assigned, "
            f"{len(self.ignored)} tensors ignored (BatchNorm counters, ImageNet classifier)"
        )
        if self.missing:
            text += (
                f"; {len(self.missing)} Keras weights not in the checkpoint: "
                f"{_listing(self.missing)}"
            )
        if self.unused:
            text += f"; {len(self.unused)} checkpoint tensors unused: {_listing(self.unused)}"
        return text


def _listing(names, separator=", "):
    names = list(names)
    shown = separator.join(names[:MAX_LISTED])
    return shown + (
        f"{separator}... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    )


def _expected_torch_shape(kind, keras_shape):
    if kind == "conv_kernel":
        kh, kw, cin, cout = keras_shape
        return (cout, cin, kh, kw)
    if kind == "projection_kernel":
        cin, cout = keras_shape
        return (cout, cin, 1, 1)
    if kind == "scalar":
        return (1,)
    return tuple(keras_shape)


def _keras_value(kind, value):
    """The tensor in Keras layout, or None when its rank does not fit `kind`."""
    if kind == "conv_kernel":
        return value.transpose(2, 3, 1, 0) if value.ndim == 4 else None
    if kind == "projection_kernel":
        if value.ndim != 4 or value.shape[2:] != (1, 1):
            return None
        return value[:, :, 0, 0].T
    if kind == "scalar":
        return value.reshape(()) if value.size == 1 else None
    return value


def _model_config(model):
    config = {
        "num_classes": model.num_classes,
        "backbone": f"resnet{model.backbone.depth}",
        "stem": model.backbone.stem,
        "stem_width": model.backbone.stem_width if model.backbone.stem == "deep" else None,
        "aux_head": model.aux_head,
        "head_channels": model.head_channels,
        "attention_reduction": model.attention_reduction,
    }
    if model.aux_head:
        config["aux_channels"] = model.aux_channels
    return config


def _config_hint(state_dict, arch, model):
    """' The checkpoint has X=..., the model X=...' for every differing argument."""
    try:
        checkpoint = config_from_state_dict(state_dict, arch)
    except ValueError:
        return ""
    differences = [
        f"{key}={checkpoint[key]!r} (model: {value!r})"
        for key, value in _model_config(model).items()
        if key in checkpoint and checkpoint[key] != value
    ]
    if not differences:
        return ""
    return (
        " The checkpoint was made for a different configuration: "
        + ", ".join(differences)
        + "; build the model with `danet_keras.convert.model_config` or those arguments."
    )


def load_torch_checkpoint(model, checkpoint, arch="auto", strict=True):
    """Copies a PyTorch DANet checkpoint's weights into a Keras `DANet`.

    Conv kernels are transposed from (out, in, kh, kw) to (kh, kw, in, out),
    the position attention's 1x1 projections become (in, out) matrices, the
    attention scales (shape (1,) official, () mmsegmentation) become scalars,
    BatchNorm weight/bias/running_mean/running_var become
    gamma/beta/moving_mean/moving_variance. Nothing is assigned unless every
    shape fits, so a failed call leaves the model as it was.

    The model must have the checkpoint's configuration (see
    `config_from_state_dict` / `model_config`): output stride, multi-grid and
    `align_corners` are not in the weights and are not checked.

    Args:
        model: a `danet_keras.DANet` built with `block_layout="torch"`.
        checkpoint: a path (`.pth`, `.pth.tar`, `.safetensors`, `.npz`, ...)
            or a state dict (mapping of names to torch tensors or numpy
            arrays); see `read_state_dict`. To load part of a checkpoint
            (e.g. all but the classifiers, for other classes), pass a
            filtered state dict with `strict=False`.
        arch: `"auto"` (from the key names), `"official"` or `"mmseg"`.
        strict: if True, every checkpoint tensor must be used and every Keras
            weight assigned; otherwise the unmatched ones are reported with a
            warning and the rest is loaded.

    Returns:
        A `ConversionReport`.

    Raises:
        ValueError: not a DANet checkpoint; a tensor whose shape does not fit
            its Keras weight (always; the message names both and their
            shapes); with `strict`, unmatched names (listed).
    """
    state_dict = read_state_dict(checkpoint)
    arch = resolve_arch(state_dict, arch)
    pairs, missing = weight_sources(model, arch)
    values, mismatches, used = [], [], set()
    for source, variable in pairs:
        if source.torch_key not in state_dict:
            missing.append(source.keras_name)
            continue
        used.add(source.torch_key)
        tensor = state_dict[source.torch_key]
        value = _keras_value(source.kind, tensor)
        keras_shape = tuple(variable.shape)
        if value is None or tuple(value.shape) != keras_shape:
            mismatches.append(
                f"{source.torch_key} has shape {tuple(tensor.shape)} but Keras weight "
                f"{source.keras_name} {keras_shape} needs "
                f"{_expected_torch_shape(source.kind, keras_shape)}"
            )
            continue
        values.append((variable, value))
    ignored = tuple(k for k in state_dict if k not in used and is_ignored(k, arch))
    unused = tuple(k for k in state_dict if k not in used and not is_ignored(k, arch))
    if mismatches:
        raise ValueError(
            f"{len(mismatches)} checkpoint tensors do not fit the model: "
            f"{_listing(mismatches, '; ')}." + _config_hint(state_dict, arch, model)
        )
    report = ConversionReport(
        arch=arch,
        assigned=tuple((s.keras_name, s.torch_key) for s, _ in pairs if s.torch_key in used),
        missing=tuple(missing),
        unused=unused,
        ignored=ignored,
    )
    if missing or unused:
        message = f"The checkpoint and the model do not match one to one. {report}."
        if strict:
            hint = _config_hint(state_dict, arch, model)
            raise ValueError(f"{message}{hint} (strict=False loads the rest.)")
        warnings.warn(message, stacklevel=2)
    for variable, value in values:
        variable.assign(np.asarray(value, dtype=variable.dtype))
    return report


def converted_model(model_class, checkpoint, arch="auto", strict=True, preset=None, **overrides):
    """Builds the model a PyTorch checkpoint needs and loads the checkpoint into it.

    Args:
        model_class: the `DANet` class (passed in: it lives above this module).
        checkpoint: a path or a state dict (see `read_state_dict`).
        arch: `"auto"`, `"official"` or `"mmseg"`.
        strict: see `load_torch_checkpoint`.
        preset: the name of the preset the checkpoint is (its settings); None:
            found from the layout and the file name.
        **overrides: `DANet` arguments that replace what `model_config`
            derives (None: not given).

    Returns:
        `(model, report, config, sources)`: the model, the `ConversionReport`,
        the `DANet` arguments used and where each came from (see `model_config`).
    """
    file_name = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else None
    state_dict = read_state_dict(checkpoint)
    arch, config, sources = model_config(
        state_dict, arch, file_name=file_name, preset=preset, **overrides
    )
    # The preset's configuration, with every setting the checkpoint and the arguments decided.
    described_by = preset or preset_for_checkpoint(arch, file_name)
    model = model_class.from_preset(described_by, load_weights=False, **config)
    report = load_torch_checkpoint(model, state_dict, arch=arch, strict=strict)
    return model, report, config, sources


def converted_preset_metadata(preset, arch, checkpoint_name):
    """The `metadata.json` facts of a preset converted from a PyTorch checkpoint."""
    return {
        "source": "converted PyTorch checkpoint",
        "checkpoint": os.path.basename(checkpoint_name) if checkpoint_name else None,
        "checkpoint_layout": arch,
        "preset": preset,
    }
