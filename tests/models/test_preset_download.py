"""Weights by name: `from_preset` downloads a published checkpoint once, checks, converts, caches.

A local HTTP server on 127.0.0.1 serves a small mmsegmentation-layout checkpoint that the
test writes; the preset table's entry is pointed at it.
"""

import functools
import http.server
import json
import os
import re
import threading

import numpy as np
import pytest

from danet_keras import DANet
from danet_keras.models import presets
from danet_keras.utils.download import DownloadFailed
from danet_keras.utils.hashing import file_digest

torch = pytest.importorskip("torch")

from danet_keras.convert import convert_checkpoint  # noqa: E402
from danet_keras.convert.torch_reference import DANetReference  # noqa: E402

NAME = "danet_resnet101_d8_voc12aug_mmseg"
# The preset's layout (deep stem, auxiliary head, 21 classes) on the smallest backbone.
SMALL_MMSEG = dict(
    num_classes=21,
    backbone="resnet18",
    stem="deep",
    stem_width=32,
    aux_head=True,
    aux_channels=8,
    head_channels=16,
)


class _Server:
    """A static file server on 127.0.0.1 that counts the requests for each path."""

    def __init__(self, directory):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet; the test reads `requests`
                server.requests.append(self.path)

        handler = functools.partial(Handler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(server, checkpoint file name, its path): a small mmseg checkpoint served locally."""
    directory = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    reference = DANetReference("mmseg", **SMALL_MMSEG)
    # float16 halves the file; the converter widens it.
    state_dict = {
        k: v.half() if v.is_floating_point() else v for k, v in reference.state_dict().items()
    }
    path = directory / "checkpoint.pth"
    torch.save(state_dict, path)
    # Named as mmsegmentation names its releases: the SHA-256's first 8 hex digits last.
    name = f"danet_r18-d8_512x512_20k_voc12aug-{file_digest(path)[:8]}.pth"
    os.rename(path, directory / name)
    server = _Server(directory)
    yield server, name, directory / name
    server.close()


def point_preset_at(monkeypatch, url, file_hash):
    weights = dict(presets.PRESETS[NAME]["weights"], url=url, hash=file_hash)
    monkeypatch.setitem(presets.PRESETS, NAME, dict(presets.PRESETS[NAME], weights=weights))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANET_KERAS_HOME", str(tmp_path))
    return tmp_path / "presets"


def files_under(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def entries(folder):
    """What `folder` holds (folders too), or nothing when it does not exist."""
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_from_preset_downloads_checks_converts_and_caches_once(served, cache, monkeypatch, capsys):
    server, file_name, checkpoint = served
    point_preset_at(monkeypatch, server.url + file_name, f"sha256:{file_name[-12:-4]}")
    before = len(server.requests)
    model = DANet.from_preset(NAME)
    assert server.requests[before:] == [f"/{file_name}"]
    assert "Downloading data from" in capsys.readouterr().out  # Keras' progress bar
    # The cache holds the converted preset, and nothing else (no checkpoint, no partials).
    assert entries(cache) == [NAME]
    assert {"config.json", "model.weights.h5", "metadata.json"} <= set(files_under(cache / NAME))
    metadata = json.loads((cache / NAME / "metadata.json").read_text())
    assert metadata["url"] == server.url + file_name and metadata["checkpoint"] == file_name
    # The same weights as converting the file by hand.
    expected, _, _, _ = convert_checkpoint(str(checkpoint), preset=NAME)
    assert model.get_config() == expected.get_config()
    assert model.backbone.depth == 18 and model.num_classes == 21
    for actual, wanted in zip(model.weights, expected.weights):
        np.testing.assert_array_equal(actual.numpy(), wanted.numpy())
    # Later calls load from the cache: no second download.
    again = DANet.from_preset(NAME)
    assert len(server.requests) == before + 1
    np.testing.assert_array_equal(
        again.get_layer("fused_classifier").kernel.numpy(),
        expected.get_layer("fused_classifier").kernel.numpy(),
    )


def test_a_file_with_another_hash_is_refused_and_nothing_is_cached(served, cache, monkeypatch):
    server, file_name, _ = served
    url = server.url + file_name
    point_preset_at(monkeypatch, url, "sha256:0123abcd")
    with pytest.raises(DownloadFailed) as refused:
        DANet.from_preset(NAME)
    message = str(refused.value)
    assert refused.value.reason == "hash" and "\n" not in message
    for expected in (url, str(cache), f"danet-keras convert FILE --preset {NAME}", "0123abcd"):
        assert expected in message
    assert entries(cache) == []


def test_an_unreachable_server_gives_a_one_line_message(served, cache, monkeypatch):
    server, file_name, _ = served
    closed = _Server(cache.parent)
    url = closed.url + file_name
    closed.close()  # nothing listens on that port any more
    point_preset_at(monkeypatch, url, f"sha256:{file_name[-12:-4]}")
    with pytest.raises(DownloadFailed) as offline:
        DANet.from_preset(NAME)
    message = str(offline.value)
    assert offline.value.reason == "unreachable" and "\n" not in message
    for expected in (url, str(cache), f"danet-keras convert FILE --preset {NAME}"):
        assert expected in message
    assert entries(cache) == []


def test_what_a_killed_download_left_is_cleared(served, cache, monkeypatch):
    from danet_keras.utils.atomic_io import partial_name

    server, file_name, _ = served
    point_preset_at(monkeypatch, server.url + file_name, "sha256:0123abcd")
    # A scratch folder of a download whose process is gone (pid 2**22 + 1 runs nowhere).
    leftover = partial_name(cache / f"{NAME}.download")
    leftover = re.sub(r"-\d+-([0-9a-f]{8})\.partial", rf"-{2**22 + 1}-\1.partial", leftover)
    os.makedirs(os.path.join(leftover, "half"))
    assert entries(cache) == [os.path.basename(leftover)]
    with pytest.raises(DownloadFailed):
        DANet.from_preset(NAME)
    assert entries(cache) == []


def test_the_published_hashes_are_the_release_file_names(monkeypatch):
    for name, entry in presets.PRESETS.items():
        weights = entry["weights"]
        if not weights:
            continue
        if weights["arch"] == "mmseg":
            digits = re.search(r"-([0-9a-f]{8})\.pth$", weights["url"]).group(1)
            assert weights["hash"] == f"sha256:{digits}", name
        else:  # the official release: by hand, and said why
            assert "hash" not in weights and "Google Drive" in weights["manual"]


def test_info_says_which_presets_download(cache):
    from danet_keras.cli.info import info_text, weights_status

    def status(name):
        return weights_status(name, presets.PRESETS[name]["weights"])

    assert status(NAME).startswith("download on first use from https://download.openmmlab")
    official = status("danet_resnet101_cityscapes")
    assert official.startswith("by hand") and "Google Drive" in official
    assert "danet-keras convert FILE --preset danet_resnet101_cityscapes" in official
    assert status("danet_resnet50_cityscapes").startswith("none published")
    text = info_text()
    for name in presets.PRESETS:
        assert f"weights: {status(name)}" in text
    imagenet = weights_status(
        "resnet50_imagenet", presets.BACKBONE_PRESETS["resnet50_imagenet"]["weights"]
    )
    assert imagenet.startswith("download on first use") and f"weights: {imagenet}" in text


def point_backbone_at(monkeypatch, name, url, file_hash):
    entry = presets.BACKBONE_PRESETS[name]
    weights = dict(entry["weights"], url=url, hash=file_hash)
    monkeypatch.setitem(presets.BACKBONE_PRESETS, name, dict(entry, weights=weights))


def test_imagenet_backbone_weights_unreachable_give_the_one_line_message(cache, monkeypatch):
    from danet_keras import DilatedResNet

    closed = _Server(cache.parent)
    url = closed.url + "resnet50_notop.h5"
    closed.close()
    point_backbone_at(monkeypatch, "resnet50_imagenet", url, "md5:" + "0" * 32)
    with pytest.raises(DownloadFailed) as offline:
        DilatedResNet.from_preset("resnet50_imagenet")
    message = str(offline.value)
    assert "\n" not in message and url in message and str(cache) in message
    assert "DilatedResNet.from_keras_applications(50, FILE)" in message
    assert entries(cache) == []


def test_imagenet_backbone_weights_download_once_in_the_layout_asked_for(
    cache, monkeypatch, tmp_path_factory
):
    import keras

    from danet_keras import DilatedResNet

    directory = tmp_path_factory.mktemp("imagenet")
    applications = keras.applications.ResNet50(include_top=False, weights=None)
    path = directory / "resnet50_notop.weights.h5"
    applications.save_weights(path)
    server = _Server(directory)
    try:
        url = server.url + path.name
        point_backbone_at(monkeypatch, "resnet50_imagenet", url, f"md5:{file_digest(path, 'md5')}")
        model = DANet(
            3, backbone="resnet50_imagenet", backbone_weights="imagenet", output_stride=16
        )
        backbone = model.backbone
        assert backbone.block_layout == "keras" and backbone.output_stride == 16
        compared = 0
        for layer in applications.layers:
            if layer.weights:
                loaded = backbone.get_layer(layer.name).get_weights()
                for value, kept in zip(layer.get_weights(), loaded, strict=True):
                    np.testing.assert_array_equal(kept, value)
                compared += 1
        assert compared > 100
        again = DilatedResNet.from_preset("resnet50_imagenet")
        assert server.requests == ["/" + path.name]  # the cache serves the second call
        np.testing.assert_array_equal(again.weights[0].numpy(), backbone.weights[0].numpy())
    finally:
        server.close()
