import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from danet_keras.convert import read_state_dict  # noqa: E402

STATE = {
    "head.sa.gamma": torch.tensor([0.75]),
    "head.conv8.1.weight": torch.arange(6, dtype=torch.float32).reshape(3, 2, 1, 1),
    "pretrained.bn1.num_batches_tracked": torch.tensor(12),
}


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


def test_pickles_that_need_code_are_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": dict(STATE), "payload": _RunsCode(str(marker))}, path)
    with pytest.raises(ValueError, match=r"refused.*weights_only=True"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("noise.pth", os.urandom(4096), "is not a PyTorch checkpoint"),
        ("notes.pth", b"these are not weights\n", "is not a PyTorch checkpoint"),
        ("fake.safetensors", b"\x00" * 64, "is not a safetensors file"),
        ("fake.npz", b"PK\x03\x04 broken", "is not an .npz archive"),
    ],
)
def test_files_that_are_not_checkpoints(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
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
