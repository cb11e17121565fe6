"""Reading PyTorch state dicts from `.pth` / `.pth.tar`, `.safetensors` and `.npz` files.

PyTorch files are read with `torch.load(weights_only=True)`: tensors,
containers and plain values only, never arbitrary objects, so a file cannot
run code while it is read. One allowance: numpy scalars and dtypes, which
training scripts often store beside the weights (the official DANet
checkpoints keep `best_pred`, a numpy float); rebuilding them runs no code.
That needs torch 2.6 or newer: older versions' weights-only loading can be
made to run code (CVE-2025-32434), so they are refused before any file is
opened. A file that is not read raises `CheckpointRefused` (a `ValueError`)
whose one-line message says why: unsafe content (naming the object), a
format that is not a checkpoint (or a truncated one), or too old a torch.
There is no option to load arbitrary objects.
"""

import os
import pickle
import re
import warnings
from collections.abc import Mapping

import numpy as np

try:
    from numpy._core import multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray

# Nesting of the usual checkpoint formats: {"state_dict": {...}, "optimizer":
# ..., "epoch": ...} (official DANet, mmsegmentation / mmengine), {"model":
# {...}} (other trainers).
STATE_DICT_KEYS = ("state_dict", "model")
# Prefix that `torch.nn.DataParallel` adds to every key.
DATA_PARALLEL_PREFIX = "module."


def _numpy_globals():
    """Allowlist for `torch.serialization.safe_globals`: numpy scalar/dtype rebuilders."""
    allowed = [
        multiarray.scalar,
        (multiarray.scalar, "numpy.core.multiarray.scalar"),  # pickles written with numpy 1.x
        np.dtype,
    ]
    # numpy 2 pickles name the dtype classes (numpy.dtypes.Float64DType, ...).
    allowed += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return allowed


# The oldest torch whose `torch.load(weights_only=True)` cannot be made to run code: 2.5.1
# and older can (CVE-2025-32434), and the oldest of them lack `safe_globals`.
MIN_TORCH_VERSION = (2, 6)
# First bytes of the files `torch.save` writes: a zip archive (torch >= 1.6), or the
# legacy format, a pickle (protocol 2 opcode) of its magic number.
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = b"\x80"
# Weights-only unpickler refusals that name a Python global, class or function the file
# needs: torch's messages of 2.6 and later, the name in group 1.
_UNSAFE_PATTERNS = (
    r"GLOBAL (\S+) was not an allowed global",
    r"unsupported GLOBAL (\S+) whose module",
    r"Trying to call reduce for unrecognized function (.+?)(?: which belongs|$)",
    r"Can only (?:create new object|build) .*? but got <class '([^']+)'>",
)


class CheckpointRefused(ValueError):
    """A checkpoint file that is not read, with why in `reason` and a one-line message.

    Reasons: `"unsafe"` (unpickling it needs Python objects beyond tensors and plain
    values, which could run code), `"format"` (not a PyTorch zip/pickle checkpoint,
    safetensors or .npz file, or one that is truncated or damaged) and `"torch_version"`
    (the installed torch is older than 2.6 and cannot load checkpoints safely).
    """

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def _one_line(text):
    return " ".join(str(text).split())


def _torch_version(version):
    """(major, minor) of a `torch.__version__` such as "2.13.0+cpu"; None if unparsable."""
    match = re.match(r"\s*(\d+)\.(\d+)", str(version))
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_torch_version(torch):
    """Raises `CheckpointRefused` ("torch_version") unless `torch` is 2.6 or newer."""
    version = str(getattr(torch, "__version__", "unknown"))
    parsed = _torch_version(version)
    if parsed is None or parsed < MIN_TORCH_VERSION:
        raise CheckpointRefused(
            "torch_version",
            f"torch {version} is older than 2.6, which loads checkpoints safely; "
            "pip install 'torch>=2.6'",
        )


def _unsafe_name(message):
    """The global/class/function a weights-only refusal names, or None for other errors."""
    for pattern in _UNSAFE_PATTERNS:
        match = re.search(pattern, message, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return None


def _what_the_file_looks_like(path):
    with open(path, "rb") as f:  # an unreadable file raises its own OSError here
        head = f.read(8)
    if not head:
        return "an empty file"
    if head.startswith(_ZIP_MAGIC):
        return "a zip archive, truncated or damaged, or not one torch.save wrote"
    if head.startswith(_PICKLE_PROTOCOL):
        return "a pickle, truncated or damaged, or not one torch.save wrote"
    return "neither a PyTorch zip/pickle checkpoint nor a safetensors or .npz file"


def _torch_error_detail(error):
    """The line of torch's (often long) message that names the cause."""
    text = str(error)
    detail = re.search(
        r"[^\n]*(Unsupported operand|PytorchStreamReader|unexpected EOF|invalid load key)"
        r"[^\n.]*",
        text,
    )
    detail = detail.group(0) if detail else (text.strip().splitlines() or [""])[0]
    detail = _one_line(detail)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def require_torch(purpose):
    """The `torch` module, when it is installed and new enough to load checkpoints safely.

    Args:
        purpose: what needs it, for the message (e.g. "Reading model.pth").

    Raises:
        ValueError: torch is not installed.
        CheckpointRefused: ("torch_version") it is older than 2.6.
    """
    try:  # deferred: torch is optional
        import torch
    except ImportError as error:
        raise ValueError(
            f"{purpose} needs PyTorch: `pip install danet-keras[torch]` (or convert the "
            "state dict to .safetensors / .npz elsewhere)."
        ) from error
    check_torch_version(torch)
    return torch


def _torch_load(path):
    torch = require_torch(f"Reading {path}")
    looks_like = _what_the_file_looks_like(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()), warnings.catch_warnings():
            # Said of pickles that are not torch's (protocol 4+), which fail with their own error.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for files that are not checkpoints
        name = _unsafe_name(str(error)) if isinstance(error, pickle.UnpicklingError) else None
        if name is not None:
            raise CheckpointRefused(
                "unsafe",
                f"{path} was refused: it holds the Python object {name}, which the weights-only "
                "unpickler does not rebuild: such a file may run code when loaded. Only tensors "
                "and plain values are read (torch.load with weights_only=True); convert only "
                "checkpoints from sources you trust.",
            ) from error
        raise CheckpointRefused(
            "format",
            f"{path} is not a supported checkpoint: it is {looks_like} "
            f"({_torch_error_detail(error)}). Supported: PyTorch .pth/.pt/.pth.tar (zip or "
            "legacy pickle), .safetensors, .npz.",
        ) from error


def _read_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file {path!r}.")
    if path.endswith(".safetensors"):
        try:  # deferred: safetensors is optional
            from safetensors.numpy import load_file
        except ImportError as error:
            raise ValueError(
                f"Reading {path} needs `safetensors`: `pip install danet-keras[torch]`."
            ) from error
        try:
            return load_file(path)
        except Exception as error:
            raise CheckpointRefused(
                "format", f"{path} is not a safetensors file ({_one_line(error)})."
            ) from error
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except Exception as error:
            raise CheckpointRefused(
                "format",
                f"{path} is not an .npz archive of arrays (object arrays are refused) "
                f"({_one_line(error)}).",
            ) from error
    return _torch_load(path)


def _to_numpy(name, value):
    if hasattr(value, "detach"):  # a torch.Tensor; bfloat16/float16 widened
        try:
            value = value.detach().cpu()
            if value.is_floating_point():
                value = value.float()
            return value.numpy()
        except (TypeError, RuntimeError, NotImplementedError) as error:
            # Quantized, sparse and meta tensors have no plain array of values.
            raise ValueError(
                f"Entry {name!r} of the state dict is a {value.dtype} tensor with "
                f"{str(value.layout).removeprefix('torch.')} layout on {value.device.type}, "
                f"which has no plain array of values ({_one_line(error)})."
            ) from error
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
        CheckpointRefused: (a `ValueError`) the file needs arbitrary objects
            to unpickle, is not a checkpoint or is damaged, or the installed
            torch is older than 2.6; `reason` says which.
        ValueError: the file holds no state dict.
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
