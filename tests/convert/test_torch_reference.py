import numpy as np
import pytest

torch = pytest.importorskip("torch")

from danet_keras.convert.torch_reference import DANetReference  # noqa: E402


def test_official_layout_has_the_official_keys_and_parameter_count(meta_state_dict):
    state = meta_state_dict("official", num_classes=19, backbone="resnet50")
    for key, shape in {
        "pretrained.conv1.weight": (64, 3, 7, 7),
        "pretrained.bn1.running_var": (64,),
        "pretrained.layer1.0.conv1.weight": (64, 64, 1, 1),
        "pretrained.layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "pretrained.layer4.2.bn3.bias": (2048,),
        "head.conv5a.0.weight": (512, 2048, 3, 3),
        "head.conv5c.1.running_mean": (512,),
        "head.sa.query_conv.weight": (64, 512, 1, 1),
        "head.sa.value_conv.bias": (512,),
        "head.sa.gamma": (1,),
        "head.sc.gamma": (1,),
        "head.conv51.0.weight": (512, 512, 3, 3),
        "head.conv6.1.weight": (19, 512, 1, 1),
        "head.conv8.1.bias": (19,),
    }.items():
        assert tuple(state[key].shape) == shape, key
    assert {key.split(".")[0] for key in state} == {"pretrained", "head"}
    assert not any(".fc." in key for key in state)
    with torch.device("meta"):
        reference = DANetReference("official", num_classes=19, backbone="resnet50")
    # The figure DESIGN.md states for the official DANet-ResNet50 (19 classes).
    assert sum(p.numel() for p in reference.parameters()) == 47_462_651


def test_mmseg_layout_has_mmsegmentation_keys(meta_state_dict):
    state = meta_state_dict(
        "mmseg", num_classes=19, backbone="resnet50", stem="deep", aux_head=True
    )
    for key, shape in {
        "backbone.stem.0.weight": (32, 3, 3, 3),
        "backbone.stem.1.weight": (32,),
        "backbone.stem.6.weight": (64, 32, 3, 3),
        "backbone.stem.7.running_var": (64,),
        "backbone.layer3.5.conv2.weight": (256, 256, 3, 3),
        "decode_head.pam_in_conv.conv.weight": (512, 2048, 3, 3),
        "decode_head.pam_in_conv.bn.weight": (512,),
        "decode_head.pam.query_project.weight": (64, 512, 1, 1),
        "decode_head.pam.key_project.bias": (64,),
        "decode_head.pam.value_project.weight": (512, 512, 1, 1),
        "decode_head.pam.gamma.scale": (),
        "decode_head.cam.gamma.scale": (),
        "decode_head.cam_out_conv.bn.running_mean": (512,),
        "decode_head.conv_seg.weight": (19, 512, 1, 1),
        "decode_head.pam_conv_seg.bias": (19,),
        "auxiliary_head.convs.0.conv.weight": (256, 1024, 3, 3),
        "auxiliary_head.conv_seg.weight": (19, 256, 1, 1),
    }.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(key.startswith("backbone.conv1") for key in state)


def test_official_deep_stem_keeps_its_last_batchnorm_outside(meta_state_dict):
    state = meta_state_dict("official", num_classes=3, backbone="resnet50", stem="deep")
    assert tuple(state["pretrained.conv1.0.weight"].shape) == (64, 3, 3, 3)
    assert tuple(state["pretrained.conv1.6.weight"].shape) == (128, 64, 3, 3)
    assert tuple(state["pretrained.bn1.weight"].shape) == (128,)
    assert tuple(state["pretrained.layer1.0.conv1.weight"].shape) == (64, 128, 1, 1)


def _dilations(layer):
    return [block.conv2.dilation[0] for block in layer]


def test_dilations_and_strides_follow_the_official_code():
    with torch.device("meta"):
        plain = DANetReference("official", num_classes=3, backbone="resnet101").pretrained
        grid = DANetReference(
            "official", num_classes=3, backbone="resnet101", multi_grid=(4, 8, 16)
        ).pretrained
        os16 = DANetReference(
            "official", num_classes=3, backbone="resnet50", output_stride=16
        ).pretrained
    assert _dilations(plain.layer3) == [1] + [2] * 22
    assert _dilations(plain.layer4) == [2, 4, 4]
    assert plain.layer3[0].conv2.stride == (1, 1)
    assert _dilations(grid.layer4) == [4, 8, 16]
    assert _dilations(os16.layer3) == [1] * 6 and os16.layer3[0].conv2.stride == (2, 2)
    assert _dilations(os16.layer4) == [1, 2, 2]


def test_official_layout_has_no_auxiliary_head():
    with pytest.raises(ValueError, match="no auxiliary head"):
        DANetReference("official", num_classes=3, aux_head=True)


def test_calibration_sets_attention_scales_and_running_statistics(small_official, test_images):
    reference, _ = small_official
    assert not reference.training
    assert 0.5 <= float(reference.head.sa.gamma.detach()) <= 1.0
    assert 0.5 <= float(reference.head.sc.gamma.detach()) <= 1.0
    bn = reference.pretrained.layer4[1].bn2
    assert not np.allclose(bn.running_var.numpy(), 1.0)
    from danet_keras.convert.torch_reference import normalize_images

    with torch.no_grad():
        features = reference.pretrained(normalize_images(test_images))[3]
    # Calibrated statistics keep activations at a trained model's scale.
    assert 0.05 < float(features.std()) < 20
