import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from danet_keras.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def mmseg_file(tmp_path_factory, make_reference):
    # mmsegmentation layout, deep stem, auxiliary head, half-pixel resizing.
    reference = make_reference(
        "mmseg", seed=5, num_classes=4, backbone="resnet18", stem="deep", aux_head=True
    )
    path = tmp_path_factory.mktemp("checkpoints") / "danet_r18_mmseg.pth"
    torch.save({"meta": {"mmseg_version": "1.2.2"}, "state_dict": reference.state_dict()}, path)
    return path


def test_convert_with_verification(mmseg_file, tmp_path, capsys):
    output = tmp_path / "danet.weights.h5"
    assert main(["convert", str(mmseg_file), "-o", str(output), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "mmsegmentation checkpoint: " in out
    assert "aux_head             True" in out and "(checkpoint)" in out
    assert (
        "align_corners        False" in out
        and "(preset danet_resnet101_d8_cityscapes_512x1024_mmseg)" in out
    )
    for name in ("logits", "position_logits", "channel_logits", "aux_logits"):
        assert f"  {name} " in out
    assert f"wrote {output}" in out and output.exists()


def test_failed_verification_writes_nothing(mmseg_file, tmp_path, capsys, monkeypatch):
    import danet_keras.convert
    from danet_keras.export.parity import ParityReport

    # A converter bug would show as a large difference from the reference.
    off = ParityReport(0.5, 4.0, 0.1, 0.9, 100)
    monkeypatch.setattr(
        danet_keras.convert, "verify_conversion", lambda *args, **kwargs: {"logits": off}
    )
    output = tmp_path / "danet.keras"
    assert main(["convert", str(mmseg_file), "-o", str(output), "--verify"]) == 1
    assert "parity check failed" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []


def test_bad_input_is_one_line_and_writes_nothing(mmseg_file, tmp_path, capsys):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(1000))
    output = tmp_path / "danet.weights.h5"
    assert main(["convert", str(noise), "-o", str(output)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["convert", str(mmseg_file), "-o", str(output), "--num-classes", "7"]) == 2
    assert "decode_head.conv_seg.weight has shape (4, 128, 1, 1)" in capsys.readouterr().err
    assert main(["convert", str(mmseg_file), "-o", str(output), "--multi-grid", "four"]) == 2
    assert "--multi-grid takes integers" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["noise.pth"]


def test_dropping_the_auxiliary_head_needs_no_strict(mmseg_file, tmp_path, capsys):
    output = tmp_path / "deploy.weights.h5"
    assert main(["convert", str(mmseg_file), "-o", str(output), "--no-aux-head"]) == 2
    assert "unused: auxiliary_head.convs.0.conv.weight" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="auxiliary_head.conv_seg.weight"):
        arguments = [
            "convert",
            str(mmseg_file),
            "-o",
            str(output),
            "--no-aux-head",
            "--no-strict",
        ]
        assert main(arguments) == 0
    assert output.exists()


def test_convert_writes_a_preset_directory_and_installs_a_named_preset(
    mmseg_file, tmp_path, capsys, monkeypatch
):
    from danet_keras import DANet

    directory = tmp_path / "preset"
    assert main(["convert", str(mmseg_file), "--preset-dir", str(directory)]) == 0
    assert f"wrote preset {directory}" in capsys.readouterr().out
    model = DANet.from_preset(str(directory))
    assert model.aux_head and model.num_classes == 4 and model.backbone.stem == "deep"
    metadata = (directory / "metadata.json").read_text()
    assert '"checkpoint": "danet_r18_mmseg.pth"' in metadata and '"mmseg"' in metadata

    # --preset NAME: that preset's settings (align_corners=True for the 769x769 model),
    # installed in the local cache where DANet.from_preset(NAME) finds it.
    monkeypatch.setenv("DANET_KERAS_HOME", str(tmp_path / "home"))
    name = "danet_resnet101_d8_cityscapes_769_mmseg"
    assert main(["convert", str(mmseg_file), "--preset", name]) == 0
    assert f"(preset {name})" in capsys.readouterr().out
    installed = DANet.from_preset(name)
    assert installed.align_corners and installed.num_classes == 4


def test_convert_needs_a_destination(mmseg_file, capsys):
    assert main(["convert", str(mmseg_file)]) == 2
    assert "-o FILE, --preset-dir DIR or --preset NAME" in capsys.readouterr().err


class _TrainerState:
    """An arbitrary Python object pickled beside the weights."""

    def __init__(self):
        self.epoch = 3


def _refused_checkpoints(directory):
    unsafe = directory / "trainer.pth"
    torch.save({"state_dict": {"w": torch.zeros(3)}, "trainer": _TrainerState()}, unsafe)
    noise = directory / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    whole = directory / "whole.pth"
    torch.save({"state_dict": {"w": torch.zeros(4096)}}, whole)
    truncated = directory / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[:3000])
    sparse = directory / "sparse.pth"
    torch.save({"state_dict": {"w": torch.zeros(4, 4).to_sparse()}}, sparse)
    return {
        "sparse": (sparse, "Entry 'w' of the state dict is a torch.float32 tensor with sparse"),
        "unsafe": (unsafe, r"was refused: it holds the Python object \S*_TrainerState, .*may run"),
        "noise": (noise, "is not a supported checkpoint: it is neither"),
        "truncated": (truncated, "is not a supported checkpoint: it is a zip archive, truncated"),
    }


@pytest.mark.parametrize("case", ["unsafe", "noise", "truncated", "old_torch", "sparse"])
def test_refused_checkpoints_exit_2_with_the_reason_in_one_line(
    case, tmp_path, capsys, monkeypatch
):
    import re

    files = _refused_checkpoints(tmp_path)
    if case == "old_torch":
        monkeypatch.setattr(torch, "__version__", "2.5.1")
        path = tmp_path / "whole.pth"
        expected = re.escape(
            "torch 2.5.1 is older than 2.6, which loads checkpoints safely; "
            "pip install 'torch>=2.6'"
        )
    else:
        path, expected = files[case]
    before = sorted(os.listdir(tmp_path))
    assert main(["convert", str(path), "-o", str(tmp_path / "out.keras")]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("danet-keras convert: error: "), lines[0]
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert sorted(os.listdir(tmp_path)) == before
