"""Checkpoint file -> Keras weights file or `.keras` model, written atomically."""

import os

from danet_keras.convert.checkpoint import read_state_dict
from danet_keras.convert.config import model_config
from danet_keras.convert.loader import load_torch_checkpoint

OUTPUT_SUFFIXES = (".weights.h5", ".keras")


def check_output_path(path):
    """Raises ValueError unless `path` is a `.weights.h5` or `.keras` in an existing directory."""
    path = os.fspath(path)
    if not path.endswith(OUTPUT_SUFFIXES):
        raise ValueError(
            f"The output {path!r} must end with .weights.h5 (weights for `model.load_weights`) "
            "or .keras (the whole model)."
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"The output directory {directory!r} does not exist.")


def save_atomically(model, path):
    """Saves weights (`.weights.h5`) or the model (`.keras`) so that `path` is whole or untouched.

    Writes a temporary file beside `path` and renames it over `path` only
    once saving succeeded.

    Args:
        model: a Keras model.
        path: the output file.
    """
    from danet_keras.atomic_io import atomic_path

    check_output_path(path)
    path = os.fspath(path)
    with atomic_path(path) as temporary:
        if path.endswith(".keras"):
            model.save(temporary, overwrite=True)
        else:
            model.save_weights(temporary, overwrite=True)


def convert_checkpoint(
    checkpoint, output=None, arch="auto", strict=True, preset=None, preset_dir=None, **overrides
):
    """Builds the Keras DANet a PyTorch checkpoint needs, loads it, and optionally saves it.

    Args:
        checkpoint: path or state dict (see `read_state_dict`).
        output: None, or a `.weights.h5` / `.keras` path, written only when
            the whole conversion succeeded.
        arch: `"auto"`, `"official"` or `"mmseg"`.
        strict: see `load_torch_checkpoint`.
        preset: the name of the preset the checkpoint is (its settings, and
            where `preset_dir` defaults to); None: found from the layout and
            the file name.
        preset_dir: None, or a preset directory to write (`config.json`,
            `model.weights.h5`, `metadata.json`) for `DANet.from_preset`;
            `True` with `preset`: the local preset cache's directory of it.
        **overrides: `DANet` arguments that replace what `model_config`
            derives (None: not given), e.g. `multi_grid=()`,
            `align_corners=True` for mmsegmentation's 769x769 models.

    Returns:
        `(model, report, config, sources)`: the Keras `DANet`, the
        `ConversionReport`, the `DANet` arguments used and where each came
        from (see `model_config`).
    """
    from danet_keras.models.danet import DANet

    if output is not None:
        check_output_path(output)
    state_dict = read_state_dict(checkpoint)
    file_name = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else None
    arch, config, sources = model_config(
        state_dict, arch, file_name=file_name, preset=preset, **overrides
    )
    model = DANet(**config)
    report = load_torch_checkpoint(model, state_dict, arch=arch, strict=strict)
    if output is not None:
        save_atomically(model, output)
    if preset_dir:
        save_converted_preset(model, preset_dir, preset, arch, file_name)
    return model, report, config, sources


def save_converted_preset(model, directory, preset, arch, checkpoint_name):
    """Writes a converted model as a preset directory, noting where it came from.

    Args:
        model: the converted `DANet`.
        directory: the preset directory, or True for the local preset cache's
            directory of `preset`.
        preset: the preset name the checkpoint is, or None.
        arch: the checkpoint's layout.
        checkpoint_name: the checkpoint's file name, or None.

    Returns:
        The directory written.
    """
    from danet_keras.preset_io import cache_dir

    if directory is True:
        if not preset:
            raise ValueError("Writing into the preset cache needs the preset's name (`preset`).")
        directory = os.path.join(cache_dir(), preset)
    metadata = {
        "source": "converted PyTorch checkpoint",
        "checkpoint": os.path.basename(checkpoint_name) if checkpoint_name else None,
        "checkpoint_layout": arch,
        "preset": preset,
    }
    return model.save_to_preset(directory, metadata)
