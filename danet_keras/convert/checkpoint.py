"""Reading PyTorch state dicts from `.pth` / `.pth.tar`, `.safetensors` and `.npz` files.

PyTorch files are read with `torch.load(weights_only=True)`: tensors,
containers and plain values only, never arbitrary objects, so a file cannot
run code while it is read. One allowance: numpy scalars and dtypes, which
training scripts often store beside the weights (the official DANet
checkpoints keep `best_pred`, a numpy float); rebuilding them runs no code.
"""

import os
import pickle
import re
from collections.abc import Mapping

import numpy as np

# Nesting of the usual checkpoint formats: {"state_dict": {...}, "optimizer":
# ..., "epoch": ...} (official DANet, mmsegmentation / mmengine), {"model":
# {...}} (other trainers).
STATE_DICT_KEYS = ("state_dict", "model")
# Prefix that `torch.nn.DataParallel` adds to every key.
DATA_PARALLEL_PREFIX = "module."


def _numpy_globals():
    """Allowlist for `torch.serialization.safe_globals`: numpy scalar/dtype rebuilders."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    allowed = [
        multiarray.scalar,
        (multiarray.scalar, "numpy.core.multiarray.scalar"),  # pickles written with numpy 1.x
        np.dtype,
    ]
    # numpy 2 pickles name the dtype classes (numpy.dtypes.Float64DType, ...).
    allowed += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return allowed


def _torch_load(path):
    try:
        import torch
    except ImportError as error:
        raise ValueError(
            f"Reading {path} needs PyTorch: `pip install danet-keras[torch]` (or convert the "
            "state dict to .safetensors / .npz elsewhere)."
        ) from error
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is long; keep its one line that names the cause.
        detail = re.search(r"[^\n]*(GLOBAL|Unsupported|invalid load key)[^\n]*", str(error))
        detail = detail.group(0).strip() if detail else str(error).strip().splitlines()[0]
        if "GLOBAL" in detail:
            raise ValueError(
                f"{path} was refused: unpickling it needs Python objects beyond tensors and plain "
                f"values ({detail}). Only state dicts are read "
                f"(torch.load with weights_only=True). "
                "If you trust the file, load it in PyTorch and save `model.state_dict()` again."
            ) from error
        raise ValueError(f"{path} is not a PyTorch checkpoint ({detail}).") from error
    except Exception as error:  # torch raises many types for files that are not checkpoints
        raise ValueError(
            f"{path} is not a PyTorch checkpoint ({type(error).__name__}: {error})."
        ) from error


def _read_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file {path!r}.")
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError as error:
            raise ValueError(
                f"Reading {path} needs `safetensors`: `pip install danet-keras[torch]`."
            ) from error
        try:
            return load_file(path)
        except Exception as error:
            raise ValueError(f"{path} is not a safetensors file ({error}).") from error
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except Exception as error:
            raise ValueError(
                f"{path} is not an .npz archive of arrays (object arrays are refused) ({error})."
            ) from error
    return _torch_load(path)


def _to_numpy(name, value):
    if hasattr(value, "detach"):  # a torch.Tensor; bfloat16/float16 widened
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    if isinstance(value, np.ndarray) or np.isscalar(value) and not isinstance(value, str):
        return np.asarray(value)
    raise ValueError(
        f"Entry {name!r} of the state dict is a {type(value).__name__}, not a tensor; "
        "expected a mapping of parameter names to tensors."
    )


def _unwrap(checkpoint, source):
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            f"{source} holds a {type(checkpoint).__name__}, not a state dict (a mapping of "
            "parameter names to tensors)."
        )
    for key in STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def read_state_dict(checkpoint):
    """A PyTorch state dict as `{name: numpy array}`.

    Args:
        checkpoint: a path (`.pth`, `.pth.tar`, `.pt`, `.bin`: read with
            `torch.load(weights_only=True)`; `.safetensors`; `.npz`) or a
            mapping (a state dict of torch tensors or numpy arrays). A
            checkpoint that nests the state dict under `"state_dict"` or
            `"model"` is unwrapped; a `module.` prefix on every key
            (`DataParallel`) is removed.

    Returns:
        A dict of float32 (or integer) numpy arrays, in the file's order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a checkpoint, needs arbitrary objects to
            unpickle, or holds no state dict.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        source = os.fspath(checkpoint)
        state_dict = _unwrap(_read_file(source), source)
    else:
        source = "the checkpoint"
        state_dict = _unwrap(checkpoint, source)
    if not state_dict:
        raise ValueError(f"{source} holds an empty state dict.")
    keys = [str(key) for key in state_dict]
    strip = all(key.startswith(DATA_PARALLEL_PREFIX) for key in keys)
    return {
        (key[len(DATA_PARALLEL_PREFIX) :] if strip else key): _to_numpy(key, value)
        for key, value in zip(keys, state_dict.values())
    }
