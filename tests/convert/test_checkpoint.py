import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from danet_keras.convert import read_state_dict  # noqa: E402
from danet_keras.models.conversion.checkpoint import CheckpointRefused  # noqa: E402

STATE = {
    "head.sa.gamma": torch.tensor([0.75]),
    "head.conv8.1.weight": torch.arange(6, dtype=torch.float32).reshape(3, 2, 1, 1),
    "pretrained.bn1.num_batches_tracked": torch.tensor(12),
}
NOISE = np.random.default_rng(0).bytes(4096)


def _assert_same(actual, expected=STATE):
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(actual[key], value.numpy())


def test_official_training_checkpoint_is_unwrapped(tmp_path):
    # As the official train.py saves it (plus a DataParallel prefix): the
    # state dict beside the epoch, optimizer state and a numpy best_pred.
    path = tmp_path / "DANet101.pth.tar"
    torch.save(
        {
            "epoch": 240,
            "state_dict": {f"module.{k}": v for k, v in STATE.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.003}]},
            "best_pred": np.float64(0.7993),
        },
        path,
    )
    _assert_same(read_state_dict(path))


def test_legacy_serialisation_and_half_precision(tmp_path):
    path = tmp_path / "old.pth"
    torch.save(
        {"model": {k: v.half() if v.is_floating_point() else v for k, v in STATE.items()}},
        path,
        _use_new_zipfile_serialization=False,
    )
    state = read_state_dict(str(path))
    assert state["head.conv8.1.weight"].dtype == np.float32
    _assert_same(state)


def test_safetensors_and_npz_read_like_torch_files(tmp_path):
    from safetensors.torch import save_file

    save_file(STATE, str(tmp_path / "m.safetensors"))
    np.savez(tmp_path / "m.npz", **{k: v.numpy() for k, v in STATE.items()})
    _assert_same(read_state_dict(tmp_path / "m.safetensors"))
    _assert_same(read_state_dict(tmp_path / "m.npz"))


def test_a_mapping_of_tensors_or_arrays_is_accepted():
    _assert_same(read_state_dict({"state_dict": dict(STATE)}))
    _assert_same(read_state_dict({k: v.numpy() for k, v in STATE.items()}))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _TrainerState:
    """An arbitrary Python object, as trainers pickle beside the weights."""

    def __init__(self):
        self.epoch = 3


def _refusal(path, reason):
    with pytest.raises(CheckpointRefused) as refused:
        read_state_dict(path)
    assert refused.value.reason == reason, str(refused.value)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message
    return message


def test_pickles_that_need_code_are_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": dict(STATE), "payload": _RunsCode(str(marker))}, path)
    message = _refusal(path, "unsafe")
    assert "the Python object io.open," in message and "may run code" in message
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_an_arbitrary_class_instance_is_refused_as_unsafe_and_named(tmp_path, legacy):
    path = tmp_path / "trainer.pth"
    torch.save(
        {"state_dict": dict(STATE), "trainer": _TrainerState()},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    message = _refusal(path, "unsafe")
    assert re.search(r"the Python object \S*_TrainerState, ", message), message
    assert "may run code" in message and "sources you trust" in message
    # No way round the refusal is offered.
    assert "weights_only=False" not in message and "add_safe_globals" not in message


def _truncated(tmp_path, legacy):
    whole = tmp_path / "whole.pth"
    torch.save(
        {"state_dict": {"w": torch.zeros(4096)}}, whole, _use_new_zipfile_serialization=not legacy
    )
    data = whole.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_truncated_checkpoint_is_an_unsupported_format(tmp_path, legacy):
    message = _refusal(_truncated(tmp_path, legacy), "format")
    kind = "a pickle" if legacy else "a zip archive"
    assert f"is not a supported checkpoint: it is {kind}, truncated or damaged" in message


@pytest.mark.parametrize(
    "name, content, message",
    [
        # Random bytes, seeded: unseeded ones would start with a pickle opcode now and then.
        ("noise.pth", NOISE, "it is neither a PyTorch zip/pickle checkpoint"),
        ("noise_after_zip_magic.pth", b"PK\x03\x04" + NOISE, "it is a zip archive"),
        ("noise_after_pickle_protocol.pth", b"\x80\x02" + NOISE, "it is a pickle"),
        ("notes.pth", b"these are not weights\n", "is not a supported checkpoint"),
        ("empty.pth", b"", "it is an empty file"),
        ("fake.safetensors", b"\x00" * 64, "is not a safetensors file"),
        ("fake.npz", b"PK\x03\x04 broken", "is not an .npz archive"),
    ],
)
def test_files_that_are_not_checkpoints(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    assert message in _refusal(path, "format")


@pytest.mark.parametrize("version", ["2.5.1", "2.5.1+cu124", "2.1.0", "1.13.1"])
def test_torch_older_than_2_6_is_refused_before_loading(tmp_path, monkeypatch, version):
    path = tmp_path / "good.pth"
    torch.save(dict(STATE), path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("torch.load ran under a torch older than 2.6")

    monkeypatch.setattr(torch, "__version__", version)
    monkeypatch.setattr(torch, "load", must_not_run)
    with pytest.raises(CheckpointRefused) as refused:
        read_state_dict(path)
    assert refused.value.reason == "torch_version"
    assert str(refused.value) == (
        f"torch {version} is older than 2.6, which loads checkpoints safely; "
        "pip install 'torch>=2.6'"
    )


@pytest.mark.parametrize("version", ["2.6.0", "2.6.0a0+git1234", "2.13.0+cpu", "3.0.0"])
def test_torch_2_6_and_newer_are_accepted(tmp_path, monkeypatch, version):
    path = tmp_path / "good.pth"
    torch.save(dict(STATE), path)
    monkeypatch.setattr(torch, "__version__", version)
    _assert_same(read_state_dict(path))


@pytest.mark.parametrize(
    "tensor, what",
    [
        (lambda: torch.zeros(4, 4).to_sparse(), "sparse_coo layout"),
        (lambda: torch.empty(3, device="meta"), "on meta"),
    ],
    ids=["sparse", "meta"],
)
def test_tensors_without_plain_values_are_refused_naming_the_entry(tmp_path, tensor, what):
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": {**STATE, "odd.weight": tensor()}}, path)
    with pytest.raises(ValueError, match=r"Entry 'odd.weight' of the state dict is a .*" + what):
        read_state_dict(path)


def test_npz_object_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="object arrays are refused"):
        read_state_dict(tmp_path / "objects.npz")


def test_content_that_is_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"weights": {"nested": torch.zeros(2)}}, tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="'weights' of the state dict is a dict, not a tensor"):
        read_state_dict(tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="empty state dict"):
        read_state_dict({})
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_state_dict(tmp_path / "missing.pth")
