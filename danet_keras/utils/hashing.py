"""Digests of files: output fingerprints and the published hashes of downloads.

A published hash is written `"<algorithm>:<hex digits>"`, e.g. `"md5:4d47..."`
or `"sha256:f3a929e7"`: the digits may be the digest's beginning only, as
release file names carry it (mmsegmentation and `torch.hub` name checkpoints
`...-<first 8 hex digits of the SHA-256>.pth`).
"""

import hashlib

ALGORITHMS = ("sha256", "md5")
_CHUNK = 1 << 20
# Fewer hex digits than this would check next to nothing.
MIN_HASH_DIGITS = 8


def file_digest(path, algorithm="sha256"):
    """The hex digest of the file at `path` (`"sha256"` or `"md5"`), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_file_hash(file_hash):
    """`(algorithm, hex digits)` of a published hash `"<algorithm>:<hex digits>"`.

    Raises:
        ValueError: another algorithm, or not at least `MIN_HASH_DIGITS` hex digits.
    """
    algorithm, _, digits = str(file_hash).partition(":")
    digits = digits.lower()
    if (
        algorithm not in ALGORITHMS
        or len(digits) < MIN_HASH_DIGITS
        or any(c not in "0123456789abcdef" for c in digits)
    ):
        raise ValueError(
            f"A file hash is '<algorithm>:<hex digits>' with an algorithm of {ALGORITHMS} and at "
            f"least {MIN_HASH_DIGITS} digits, got {file_hash!r}."
        )
    return algorithm, digits
