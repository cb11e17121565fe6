"""Which Keras backend this process runs, and refusing TensorFlow-only work under another.

The model, its training and its `.keras` files work under every Keras backend
(KERAS_BACKEND=tensorflow, jax or torch); the deployment artefacts (SavedModel,
TFLite, ONNX) are TensorFlow graphs, made under the TensorFlow backend only.
"""

EXPORT_REMEDY = (
    "save the model (`model.save('model.keras')`) and export that file under "
    "KERAS_BACKEND=tensorflow, e.g. `KERAS_BACKEND=tensorflow danet-keras export "
    "--model model.keras --format saved_model -o exported`"
)


def keras_backend():
    """The running Keras backend's name: "tensorflow", "jax" or "torch"."""
    # deferred: utils import no Keras at module level (`danet-keras --help` loads none)
    import keras

    return keras.backend.backend()


def require_tensorflow_backend(what, remedy=EXPORT_REMEDY):
    """Raises unless Keras runs on TensorFlow.

    Args:
        what: the TensorFlow-only work asked for, e.g. "SavedModel export".
        remedy: what to do instead, the end of the message.

    Raises:
        ValueError: one line naming the running backend and the remedy.
    """
    backend = keras_backend()
    if backend != "tensorflow":
        raise ValueError(
            f"{what} runs under the TensorFlow backend only (this process runs "
            f"KERAS_BACKEND={backend}): {remedy}."
        )
