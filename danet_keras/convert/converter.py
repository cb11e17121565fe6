"""Checkpoint file -> Keras weights file or `.keras` model, written atomically."""

import os

from danet_keras.models.conversion.loader import converted_model, converted_preset_metadata
from danet_keras.models.danet import DANet
from danet_keras.models.preset_io import PRESET_KIND, cache_dir
from danet_keras.utils.output_paths import check_file_artefact, check_folder_artefact, file_artefact

OUTPUT_SUFFIXES = (".weights.h5", ".keras")


def check_output_path(path, overwrite=False, inputs=()):
    """Raises ValueError unless `path` is a `.weights.h5` or `.keras` this converter may write.

    It must be in an existing directory, and be new or (with `overwrite`) a
    file of the same kind that danet-keras wrote (`danet_keras.utils.output_paths`).
    """
    path = os.fspath(path)
    if not path.endswith(OUTPUT_SUFFIXES):
        raise ValueError(
            f"The output {path!r} must end with .weights.h5 (weights for `model.load_weights`) "
            "or .keras (the whole model)."
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"The output directory {directory!r} does not exist.")
    check_file_artefact(path, output_kind(path), overwrite, inputs)


def output_kind(path):
    """The artefact kind of a converter output: `"keras_model"` or `"keras_weights"`."""
    return "keras_model" if os.fspath(path).endswith(".keras") else "keras_weights"


def save_atomically(model, path, overwrite=False):
    """Saves weights (`.weights.h5`) or the model (`.keras`) so that `path` is whole or untouched.

    Writes a temporary file beside `path` and renames it over `path` only
    once saving succeeded.

    Args:
        model: a Keras model.
        path: the output file: a new file, or (with `overwrite`) one that
            danet-keras wrote; any other existing file is refused
            (`danet_keras.utils.output_paths`).
        overwrite: replace a file of the same kind that danet-keras wrote.
    """
    check_output_path(path)
    path = os.fspath(path)
    with file_artefact(path, output_kind(path), overwrite) as temporary:
        if path.endswith(".keras"):
            model.save(temporary, overwrite=True)
        else:
            model.save_weights(temporary, overwrite=True)


def convert_checkpoint(
    checkpoint,
    output=None,
    arch="auto",
    strict=True,
    preset=None,
    preset_dir=None,
    overwrite=False,
    **overrides,
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
        overwrite: replace an `output` or preset that danet-keras wrote
            earlier; without it they are refused, and so, always, is a path
            holding anything else (`danet_keras.utils.output_paths`).
        **overrides: `DANet` arguments that replace what `model_config`
            derives (None: not given), e.g. `multi_grid=()`,
            `align_corners=True` for mmsegmentation's 769x769 models.

    Returns:
        `(model, report, config, sources)`: the Keras `DANet`, the
        `ConversionReport`, the `DANet` arguments used and where each came
        from (see `model_config`).
    """
    file_name = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else None
    if output is not None:
        check_output_path(output, overwrite, inputs=[file_name])
    if preset_dir:
        check_folder_artefact(
            preset_directory(preset_dir, preset), PRESET_KIND, overwrite, inputs=[file_name]
        )
    model, report, config, sources = converted_model(
        DANet, checkpoint, arch, strict, preset, **overrides
    )
    if output is not None:
        save_atomically(model, output, overwrite)
    if preset_dir:
        save_converted_preset(model, preset_dir, preset, report.arch, file_name, overwrite)
    return model, report, config, sources


def preset_directory(directory, preset):
    """`directory`, or for `True` the local preset cache's directory of `preset`."""
    if directory is True:
        if not preset:
            raise ValueError("Writing into the preset cache needs the preset's name (`preset`).")
        return os.path.join(cache_dir(), preset)
    return directory


def save_converted_preset(model, directory, preset, arch, checkpoint_name, overwrite=False):
    """Writes a converted model as a preset directory, noting where it came from.

    Args:
        model: the converted `DANet`.
        directory: the preset directory, or True for the local preset cache's
            directory of `preset`.
        preset: the preset name the checkpoint is, or None.
        arch: the checkpoint's layout.
        checkpoint_name: the checkpoint's file name, or None.
        overwrite: replace a preset that danet-keras wrote there earlier.

    Returns:
        The directory written.
    """
    directory = preset_directory(directory, preset)
    metadata = converted_preset_metadata(preset, arch, checkpoint_name)
    return model.save_to_preset(directory, metadata, overwrite=overwrite)
