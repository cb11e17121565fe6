import types

import numpy as np
import pytest

pytest.importorskip("torch")

from danet_keras import DANet  # noqa: E402
from danet_keras.convert import compare_with_reference, load_torch_checkpoint  # noqa: E402
from danet_keras.models.conversion.names import weight_sources  # noqa: E402

# (arch, DANet arguments): together they cover, for each depth, both stems,
# both layouts (with and without the auxiliary head), multi-grid on and off
# and both align_corners conventions, at output stride 8.
PARITY_CASES = {
    "official": {"stem": "standard", "multi_grid": (4, 8, 16), "align_corners": True},
    "mmseg": {"stem": "deep", "aux_head": True, "align_corners": False},
}


def _assert_parity(model, reference, images, label):
    reports = compare_with_reference(model, reference, images)
    expected = {"logits", "position_logits", "channel_logits"} | (
        {"aux_logits"} if model.aux_head else set()
    )
    assert set(reports) == expected
    for name, report in reports.items():
        print(f"{label} {name}: {report}")
        # The project's conversion promise (README): PyTorch and TensorFlow
        # differ by ~8e-5 (R50) to ~3e-4 (R101) of the logit range, while a
        # structural mistake shows as ~1e-1; 1e-3 separates the two on any CPU.
        assert report.relative_logit_diff <= 1e-3, f"{label} {name}: {report}"
        assert report.class_agreement >= 0.999, f"{label} {name}: {report}"
    return reports


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(PARITY_CASES))
@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_converted_model_matches_the_pytorch_reference(make_reference, test_images, backbone, arch):
    config = {"num_classes": 19, "backbone": backbone, **PARITY_CASES[arch]}
    reference = make_reference(arch, **config)
    model = DANet(**config)
    report = load_torch_checkpoint(model, reference.state_dict())
    assert report.arch == arch and not report.missing and not report.unused
    _assert_parity(model, reference, test_images, f"{backbone} {arch} {PARITY_CASES[arch]}")


def test_official_deep_stem_at_output_stride_16(make_reference, test_images):
    config = {
        "num_classes": 5,
        "backbone": "resnet18",
        "stem": "deep",
        "stem_width": 64,
        "output_stride": 16,
        "align_corners": False,
    }
    reference = make_reference("official", seed=3, **config)
    model = DANet(**config)
    load_torch_checkpoint(model, reference.state_dict(), arch="official")
    _assert_parity(model, reference, test_images, "resnet18 official deep stem OS16")


@pytest.fixture(scope="module")
def small_model(small_official_state_dict, small_official):
    model = DANet(**small_official[1])
    load_torch_checkpoint(model, small_official_state_dict)
    return model


def test_small_model_matches_and_a_structural_change_does_not(
    small_model, small_official, small_official_state_dict, test_images
):
    reference, config = small_official
    _assert_parity(small_model, reference, test_images, "resnet18 official standard stem")
    # The comparison can fail: other last-stage dilations, same weights.
    other = DANet(**config, multi_grid=(4, 8))
    load_torch_checkpoint(other, small_official_state_dict)
    report = compare_with_reference(other, reference, test_images)["logits"]
    assert report.relative_logit_diff > 1e-2


def test_weights_h5_round_trip_is_exact(small_model, small_official, test_images, tmp_path):
    path = tmp_path / "danet.weights.h5"
    small_model.save_weights(path)
    reloaded = DANet(**small_official[1])
    reloaded.load_weights(path)
    images = test_images.astype(np.float32)
    expected, actual = small_model(images), reloaded(images)
    for name in expected:
        np.testing.assert_array_equal(np.asarray(actual[name]), np.asarray(expected[name]))


def _weights(model):
    return [np.array(v) for v in model.weights]


def test_another_class_count_names_the_tensors_and_shapes(small_model, zeros_state_dict):
    before = _weights(small_model)
    state = zeros_state_dict("official", num_classes=3, backbone="resnet18")
    with pytest.raises(ValueError) as error:
        load_torch_checkpoint(small_model, state)
    message = str(error.value)
    assert (
        "head.conv8.1.weight has shape (3, 128, 1, 1) but Keras weight fused_classifier/kernel "
        "(1, 1, 128, 5) needs (5, 128, 1, 1)"
    ) in message
    assert "head.conv6.1.bias has shape (3,)" in message
    assert "num_classes=3 (model: 5)" in message
    # Nothing was assigned, not even the tensors that fit.
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(small_model)))


def test_another_depth_is_refused(small_model, zeros_state_dict):
    deeper = zeros_state_dict("official", num_classes=5, backbone="resnet34")
    with pytest.raises(ValueError, match=r"unused: pretrained\.layer1\.2\.conv1\.weight") as error:
        load_torch_checkpoint(small_model, deeper)
    assert "backbone='resnet34' (model: 'resnet18')" in str(error.value)
    bottleneck = zeros_state_dict("official", num_classes=5, backbone="resnet50")
    with pytest.raises(ValueError) as error:
        load_torch_checkpoint(small_model, bottleneck)
    assert (
        "pretrained.layer1.0.conv1.weight has shape (64, 64, 1, 1) but Keras weight "
        "backbone/stage1_block0_conv1/kernel (3, 3, 64, 64) needs (64, 64, 3, 3)"
    ) in str(error.value)


def test_strict_lists_unmatched_names_and_non_strict_loads_the_rest(
    small_model, small_official_state_dict
):
    partial = {
        k: v for k, v in small_official_state_dict.items() if not k.startswith("head.conv8.")
    }
    with pytest.raises(
        ValueError,
        match=r"2 Keras weights not in the checkpoint: fused_classifier/kernel, "
        r"fused_classifier/bias.*strict=False",
    ):
        load_torch_checkpoint(small_model, partial)
    partial["head.extra.weight"] = small_official_state_dict["head.conv8.1.bias"]
    with pytest.warns(UserWarning, match="1 checkpoint tensors unused: head.extra.weight"):
        report = load_torch_checkpoint(small_model, partial, strict=False)
    assert report.missing == ("fused_classifier/kernel", "fused_classifier/bias")
    assert report.unused == ("head.extra.weight",)
    assert ("backbone/stem_conv/kernel", "pretrained.conv1.weight") in report.assigned
    assert len(report.ignored) == sum(k.endswith("num_batches_tracked") for k in partial)


def test_the_official_backbones_imagenet_classifier_is_ignored(
    small_model, small_official_state_dict
):
    # The official 2018 code kept torchvision's `fc` in `pretrained`.
    state = dict(
        small_official_state_dict,
        **{
            "pretrained.fc.weight": np.zeros((1000, 512), np.float32),
            "pretrained.fc.bias": np.zeros(1000, np.float32),
        },
    )
    report = load_torch_checkpoint(small_model, state)
    assert {"pretrained.fc.weight", "pretrained.fc.bias"} <= set(report.ignored)
    assert not report.unused


def test_official_checkpoint_has_no_auxiliary_head(small_official, small_official_state_dict):
    model = DANet(**small_official[1], aux_head=True)
    with pytest.raises(ValueError, match="aux_conv/kernel.*aux_head=False \\(model: True\\)"):
        load_torch_checkpoint(model, small_official_state_dict)


def test_keras_block_layout_is_refused():
    with pytest.raises(ValueError, match="block_layout='torch'"):
        weight_sources(
            types.SimpleNamespace(backbone=types.SimpleNamespace(block_layout="keras")), "official"
        )


def test_verify_conversion_accepts_the_official_2018_checkpoint_layout(
    small_model, small_official, small_official_state_dict
):
    from danet_keras.convert import verify_conversion
    from danet_keras.convert.verify import parity_ok

    # PyTorch < 0.4.1 saved no num_batches_tracked; the 2018 code kept `fc`.
    old = {
        k: v for k, v in small_official_state_dict.items() if not k.endswith("num_batches_tracked")
    }
    old["pretrained.fc.weight"] = np.zeros((1000, 512), np.float32)
    reports = verify_conversion(
        small_model, old, "official", small_official[1], image_size=(33, 47)
    )
    assert set(reports) == {"logits", "position_logits", "channel_logits"}
    assert all(parity_ok(report) for report in reports.values())
