import os

import keras
import numpy as np
import pytest

from danet_keras.utils.output_paths import MARKER

torch = pytest.importorskip("torch")

from danet_keras.convert import convert_checkpoint, save_atomically  # noqa: E402

SMALL_ARGUMENTS = {"multi_grid": ()}  # ResNet-18's last stage has 2 blocks: no (4, 8, 16)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory, small_official_state_dict):
    path = tmp_path_factory.mktemp("checkpoints") / "danet_r18.pth.tar"
    torch.save(
        {"epoch": 1, "state_dict": small_official_state_dict, "best_pred": np.float64(0.5)}, path
    )
    return path


def _listing(directory):
    """The files in `directory`, without the record of what danet-keras wrote there."""
    return sorted(name for name in os.listdir(directory) if name != MARKER)


def test_weights_file_and_config_from_the_checkpoint(
    official_file, small_official, test_images, tmp_path
):
    output = tmp_path / "danet.weights.h5"
    model, report, config, sources = convert_checkpoint(official_file, output, **SMALL_ARGUMENTS)
    assert _listing(tmp_path) == ["danet.weights.h5"]
    assert report.arch == "official" and not report.unused
    assert config["backbone"] == "resnet18" and sources["backbone"] == "checkpoint"
    assert config["num_classes"] == 5 and config["align_corners"] is True
    assert sources["align_corners"] == "preset danet_resnet101_cityscapes"
    assert sources["multi_grid"] == "argument"
    expected = small_official[1]
    assert {key: config[key] for key in expected} == expected
    from danet_keras import DANet

    reloaded = DANet(**config)
    reloaded.load_weights(output)
    images = test_images.astype(np.float32)
    # Same weights, same eager ops, same process: exact.
    np.testing.assert_array_equal(
        np.asarray(reloaded(images)["logits"]), np.asarray(model(images)["logits"])
    )


def test_keras_model_file(official_file, test_images, tmp_path):
    output = tmp_path / "danet.keras"
    model, *_ = convert_checkpoint(official_file, output, **SMALL_ARGUMENTS)
    loaded = keras.saving.load_model(output)
    images = test_images[:1].astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(loaded(images)["logits"]), np.asarray(model(images)["logits"])
    )


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_checkpoints(directory, state_dict):
    noise = directory / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(2048))
    evil = directory / "evil.pth"
    torch.save({"state_dict": state_dict, "hook": _RunsCode(str(directory / "ran"))}, evil)
    classifier = directory / "resnet18_imagenet.pth"
    backbone = {
        k[len("pretrained.") :]: v for k, v in state_dict.items() if k.startswith("pretrained.")
    }
    torch.save(backbone, classifier)
    return {
        noise: "is not a supported checkpoint",
        evil: "was refused: it holds the Python object io.open",
        classifier: "Not a DANet checkpoint",
    }


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_bad_input_writes_nothing_and_keeps_an_existing_output(
    tmp_path, small_official_state_dict, suffix
):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / f"kept{suffix}"
    existing.write_bytes(b"previous content")
    for checkpoint, message in _bad_checkpoints(inputs, small_official_state_dict).items():
        with pytest.raises(ValueError, match=message):
            convert_checkpoint(checkpoint, out_dir / f"new{suffix}")
        # A file that danet-keras did not write is refused before the checkpoint is read.
        with pytest.raises(ValueError, match="did not write"):
            convert_checkpoint(checkpoint, existing)
    assert _listing(out_dir) == [f"kept{suffix}"]
    assert existing.read_bytes() == b"previous content"
    assert not (inputs / "ran").exists()


def test_a_failed_save_leaves_no_partial_file(tmp_path):
    class Broken:
        def save_weights(self, path, overwrite):
            with open(path, "wb") as handle:
                handle.write(b"half a file")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_atomically(Broken(), tmp_path / "danet.weights.h5")
    assert _listing(tmp_path) == []


def test_output_name_and_directory_are_checked_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"must end with \.weights\.h5"):
        convert_checkpoint(tmp_path / "missing.pth", tmp_path / "danet.h5")
    with pytest.raises(FileNotFoundError, match="output directory"):
        convert_checkpoint(tmp_path / "missing.pth", tmp_path / "no" / "danet.keras")
