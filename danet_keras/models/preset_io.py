"""Preset directories in keras-hub's layout: `config.json`, `model.weights.h5`, `metadata.json`.

A preset directory holds one model: its Keras-serialised configuration, its
weights and a few facts about where it came from. `DANet.from_preset` and
`DilatedResNet.from_preset` read them; `model.save_to_preset(directory)` and
`danet-keras convert ... --preset-dir DIR` write them.

Named presets whose weights are published elsewhere (mmsegmentation's model
zoo, keras.applications' ImageNet ResNets, the official DANet-101) live in the
local preset cache, `$DANET_KERAS_HOME/presets/<name>` (default
`~/.keras/danet_keras/presets/<name>`). A published file with a known hash is
downloaded, checked and converted into it on first use (`install_preset`);
`danet-keras convert CHECKPOINT --preset NAME` puts any checkpoint there by hand.
"""

import datetime
import json
import os

from danet_keras.utils.atomic_io import remove_dead_partials_of, scratch_directory, write_json
from danet_keras.utils.download import DownloadFailed, download_file
from danet_keras.utils.output_paths import OutputRefused, check_folder_artefact, folder_artefact
from danet_keras.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
PRESET_KIND = "preset"


def cache_dir():
    """The local preset cache: `$DANET_KERAS_HOME/presets` or `~/.keras/danet_keras/presets`."""
    home = os.environ.get("DANET_KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras", "danet_keras"
    )
    return os.path.join(home, "presets")


def is_preset_dir(path):
    """True when `path` is a directory holding a preset's `config.json`."""
    return os.path.isdir(str(path)) and os.path.isfile(os.path.join(str(path), CONFIG_FILE))


def local_preset_dir(name):
    """The cached directory of named preset `name`, or None when it is not installed."""
    path = os.path.join(cache_dir(), name)
    return path if is_preset_dir(path) else None


def read_json(directory, file_name):
    with open(os.path.join(directory, file_name)) as f:
        return json.load(f)


def override_config(config, overrides):
    """A serialised model `config` with `overrides` applied at every level that has them.

    A key of a nested serialised object's config (a DANet's backbone) is
    replaced there: `output_stride` reaches the backbone, `sync_batchnorm`
    both the head and the backbone. A key that no nested config has is a
    constructor argument of the model itself.

    Args:
        config: `{"class_name": ..., "config": {...}}`, as `config.json` holds it.
        overrides: {argument: value}.

    Returns:
        The updated `config` (changed in place).
    """
    arguments = config["config"]
    nested = [
        value["config"]
        for value in arguments.values()
        if isinstance(value, dict) and isinstance(value.get("config"), dict)
    ]
    for key, value in overrides.items():
        reached = [inner for inner in nested if key in inner]
        for inner in reached:
            inner[key] = value
        if key in arguments or not reached:
            arguments[key] = value
    return config


def load_preset_model(directory, expected_class, load_weights=True, overrides=None):
    """Rebuilds the model of a preset directory (and loads its weights).

    Args:
        directory: a preset directory.
        expected_class: the class the preset must hold (or a subclass of).
        load_weights: load `model.weights.h5` (it must exist) or keep the
            fresh initialisation.
        overrides: constructor arguments that replace the saved ones (any
            that leave the weight shapes as they are, e.g. `output_stride`);
            see `override_config` for how they reach a nested backbone.

    Returns:
        The model.

    Raises:
        ValueError: the directory holds another kind of model.
        FileNotFoundError: weights asked for but absent.
    """
    # deferred: training.config imports this; train() builds its strategy first
    import keras

    import danet_keras.layers  # noqa: F401  (registers the custom layers)

    config = override_config(read_json(directory, CONFIG_FILE), overrides or {})
    model = keras.saving.deserialize_keras_object(config)
    if not isinstance(model, expected_class):
        raise ValueError(
            f"{directory} holds a {type(model).__name__}, not a {expected_class.__name__}."
        )
    if load_weights:
        weights = os.path.join(directory, WEIGHTS_FILE)
        if not os.path.isfile(weights):
            raise FileNotFoundError(
                f"{directory} has no {WEIGHTS_FILE}; pass load_weights=False for fresh weights."
            )
        model.load_weights(weights)
    return model


def save_preset(model, directory, metadata=None, overwrite=False):
    """Writes `model` as a preset directory, atomically.

    The files are written into a temporary directory beside `directory`,
    which is then renamed into place: a crash never leaves a partly written
    preset under `directory`.

    Args:
        model: a Keras model whose class is registered serialisable.
        directory: the preset directory to write: a new or empty folder, or a
            preset that danet-keras wrote (with `overwrite`); anything else is
            refused (`danet_keras.utils.output_paths`).
        metadata: extra facts for `metadata.json` (e.g. the source checkpoint).
        overwrite: replace a preset that danet-keras wrote at `directory`.

    Returns:
        `directory`.
    """
    # deferred: training.config imports this; train() builds its strategy first
    import keras

    directory = os.path.abspath(str(directory))
    with folder_artefact(directory, PRESET_KIND, overwrite) as staging:
        write_json(os.path.join(staging, CONFIG_FILE), keras.saving.serialize_keras_object(model))
        model.save_weights(os.path.join(staging, WEIGHTS_FILE))
        facts = {
            "danet_keras_version": __version__,
            "keras_version": keras.__version__,
            "class_name": type(model).__name__,
            "parameter_count": int(model.count_params()),
            "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
        facts.update(metadata or {})
        write_json(os.path.join(staging, METADATA_FILE), facts, default=str)
    return directory


def install_preset(name, url, file_hash, build, metadata=None, manual_step=""):
    """Downloads a named preset's published file and installs the model built from it, once.

    The file is downloaded (with a progress bar) into a scratch folder beside
    the cache's preset folder and checked against its published hash; `build`
    turns it into a model, which is saved as the preset folder atomically
    (`save_preset`). The scratch folder and the downloaded file are removed
    whatever happens: the cache holds the whole preset or nothing of it.

    Args:
        name: the preset's name (its folder in `cache_dir()`).
        url: where its file is published.
        file_hash: the file's published hash (`danet_keras.utils.hashing`).
        build: a function of the downloaded file's path that returns the model.
        metadata: extra facts for `metadata.json` (the URL is added).
        manual_step: what to do by hand when the download fails, for the message.

    Returns:
        The installed preset directory.

    Raises:
        DownloadFailed: (an `OSError`) with a one-line message naming the URL,
            the cache folder and `manual_step`.
        OutputRefused: the cache's path for the preset holds something else.
    """
    directory = os.path.join(cache_dir(), name)
    check_folder_artefact(directory, PRESET_KIND)
    download_area = f"{directory}.download"
    remove_dead_partials_of(download_area)
    with scratch_directory(download_area) as scratch:
        try:
            path = download_file(url, scratch, file_hash)
        except DownloadFailed as error:
            raise DownloadFailed(
                error.reason,
                f"{error}: preset {name!r} is not installed, and nothing of it was left in "
                f"{cache_dir()}. {manual_step}",
            ) from None
        model = build(path)
        try:
            save_preset(model, directory, {**(metadata or {}), "url": url})
        except OutputRefused:
            if not is_preset_dir(directory):
                raise
            # Another process installed it meanwhile: its copy is the same file's.
    return directory
