"""Downloading a published file with a progress bar, checked against its published hash."""

import os
import urllib.error
import urllib.parse

from danet_keras.utils.hashing import file_digest, parse_file_hash


class DownloadFailed(OSError):
    """A download that did not give the published file, with a one-line message.

    `reason` says why: `"unreachable"` (no connection, an HTTP error) or
    `"hash"` (the file's digest is not the published one).
    """

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def _cause(error):
    # `keras.utils.get_file` re-raises urllib's errors as a plain Exception; the original
    # says it best.
    cause = error.__context__ if isinstance(error.__context__, urllib.error.URLError) else error
    if isinstance(cause, urllib.error.HTTPError):
        return f"HTTP {cause.code} {cause.msg}"
    if isinstance(cause, urllib.error.URLError):
        return " ".join(str(cause.reason).split())
    return " ".join(str(error).split()) or type(error).__name__


def download_file(url, directory, file_hash):
    """Downloads `url` into `directory` and checks it, with Keras' progress bar.

    Args:
        url: the file's address.
        directory: an existing folder to download into (the file keeps the
            URL's file name).
        file_hash: the published hash, `"<algorithm>:<hex digits>"`
            (`danet_keras.utils.hashing`).

    Returns:
        The downloaded file's path.

    Raises:
        DownloadFailed: (an `OSError`) the file could not be fetched, or its
            digest differs; nothing is left in `directory` then.
    """
    # deferred: Keras loads TensorFlow, which the preset registry's readers do without
    import keras

    algorithm, expected = parse_file_hash(file_hash)
    name = os.path.basename(urllib.parse.urlparse(url).path) or "download"
    try:
        path = keras.utils.get_file(name, url, cache_subdir=os.path.abspath(directory))
    except Exception as error:  # whatever urllib raised; get_file removed the partial file
        raise DownloadFailed(
            "unreachable", f"{url} could not be downloaded ({_cause(error)})"
        ) from error
    actual = file_digest(path, algorithm)
    if not actual.startswith(expected):
        os.remove(path)
        raise DownloadFailed(
            "hash",
            f"the file downloaded from {url} has the {algorithm} {actual}, which does not "
            f"start with the published {expected}",
        )
    return path
