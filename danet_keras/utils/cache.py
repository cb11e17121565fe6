"""The folder where danet_keras keeps what it found out about this machine and its files.

File checks (`data.file_check`) and measured lever choices
(`inference.calibration`) live there: `$DANET_KERAS_CACHE_DIR`, else
`$XDG_CACHE_HOME/danet_keras`, else `~/.cache/danet_keras`. Everything in it
can be deleted: it is measured or checked again.
"""

import os

CACHE_ENV = "DANET_KERAS_CACHE_DIR"


def cache_dir():
    """Where danet_keras caches: $DANET_KERAS_CACHE_DIR, else $XDG_CACHE_HOME/danet_keras,
    else ~/.cache/danet_keras."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "danet_keras")
