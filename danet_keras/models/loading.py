"""Loading `.keras` files safely: Keras' safe mode, and errors that name the file."""

import os
import zipfile

import keras

from danet_keras.utils.lazy import register_serializables


def load_keras_model(path):
    """The model of a `.keras` file, loaded in Keras' safe mode without compiling it.

    Safe mode refuses what would run arbitrary Python code while loading,
    such as a `Lambda` layer's function: a model file from elsewhere cannot
    execute code on this machine.

    Args:
        path: a `.keras` file.

    Returns:
        The `keras.Model` (a `DANet` for this package's files).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a `.keras` file, or a file that safe mode refuses.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a .keras model file (a .keras file is a zip archive).")
    register_serializables()
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as error:
        if "safe_mode" in str(error):
            raise ValueError(
                f"{path}: refused: it holds a Lambda layer (Python code that loading would "
                "run); danet-keras loads .keras files in Keras' safe mode only."
            ) from None
        raise ValueError(f"{path}: cannot be loaded as a Keras model ({error})") from None
