import hashlib

import pytest

from danet_keras.utils.hashing import file_digest, parse_file_hash


def test_digests_and_published_hashes(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"danet" * 1000)
    assert file_digest(path) == hashlib.sha256(b"danet" * 1000).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(b"danet" * 1000).hexdigest()
    assert parse_file_hash("sha256:F3A929E7") == ("sha256", "f3a929e7")
    for bad in ("f3a929e7", "sha1:f3a929e7aaaa", "sha256:f3a9", "md5:not-hex-digits"):
        with pytest.raises(ValueError, match="algorithm"):
            parse_file_hash(bad)
