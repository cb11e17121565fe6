"""TensorFlow's and LiteRT's native (C++) log lines, kept out of the output unless asked for.

TensorFlow 2.21 prints informational lines (oneDNN, CUDA stubs) and, on a
machine without a GPU driver, a `cuInit` error while it loads, before its
logging honours `TF_CPP_MIN_LOG_LEVEL`; LiteRT prints "INFO: Created
TensorFlow Lite XNNPACK delegate" whenever it builds an interpreter. The
command line imports TensorFlow quietly (`import_tensorflow_quietly`: file
descriptor 2 redirected while TensorFlow loads and initialises its devices,
then `TF_CPP_MIN_LOG_LEVEL=2`: informational lines and warnings hidden, errors
such as a GPU out of memory or a cuDNN failure still shown), and interpreters
are built quietly whenever the log level hides informational lines. Anything captured that is not a
native log line (a Python warning, say) is written out again.

A user who sets `TF_CPP_MIN_LOG_LEVEL=0` sees every native line as it comes.
"""

import contextlib
import os
import re
import sys
import tempfile

# TensorFlow's C++ log level for the command line: errors only.
QUIET_LOG_LEVEL = "2"
_NATIVE_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d"  # absl / TensorFlow: I0000 00:00:1795688.123 ...
    r"|WARNING: All log messages before absl"  # absl's notice before them
    r"|INFO: )"  # LiteRT's minimal logger
)


def native_info_hidden():
    """True when `TF_CPP_MIN_LOG_LEVEL` hides informational native lines (level >= 1)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() not in ("", "0")


@contextlib.contextmanager
def filtered_native_stderr(enabled=True):
    """Captures file descriptor 2 in the block, then writes back what is not a native log line.

    Args:
        enabled: False makes this a no-op (the user asked for the log).
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if line and not _NATIVE_LOG_LINE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def import_tensorflow_quietly():
    """Imports TensorFlow with its native start-up log silenced, unless the user set the level.

    Returns:
        The `tensorflow` module.
    """
    quiet = "tensorflow" not in sys.modules and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        # 2, not 3: errors (GPU out of memory, cuDNN) stay visible after start-up.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LOG_LEVEL
    with filtered_native_stderr(quiet):
        # deferred: cli.main imports this module; `--help` loads no TensorFlow
        import tensorflow

        tensorflow.config.list_physical_devices()  # CUDA initialisation logs here
    return tensorflow
