import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import danet_keras
from danet_keras import DANet
from danet_keras.models.presets import PRESETS, preset_config
from danet_keras.utils.output_paths import MARKER

from ..numerics import assert_logits_close, skip_bfloat16_where_capped_away


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def conv_params(k, cin, cout, bias=False):
    return k * k * cin * cout + (cout if bias else 0)


def official_danet_resnet50_parameter_count(num_classes):
    """Counts parameters of the official PyTorch DANet-ResNet50 layer by layer.

    Derived from the official module definitions (torchvision-style ResNet-50
    without its fc layer; DANetHead(2048, num_classes)): convolutions without
    bias except the 1x1 classifiers and the attention projections; every
    BatchNorm has a weight and a bias (running statistics are buffers).
    """
    bn = lambda c: 2 * c  # noqa: E731
    total = conv_params(7, 3, 64) + bn(64)  # stem
    inplanes = 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for b in range(blocks):
            total += conv_params(1, inplanes, planes) + bn(planes)
            total += conv_params(3, planes, planes) + bn(planes)
            total += conv_params(1, planes, 4 * planes) + bn(4 * planes)
            if b == 0:
                total += conv_params(1, inplanes, 4 * planes) + bn(4 * planes)
            inplanes = 4 * planes
    inter = 2048 // 4
    head = 2 * (conv_params(3, 2048, inter) + bn(inter))  # conv5a, conv5c
    head += (
        2 * conv_params(1, inter, inter // 8, bias=True)
        + conv_params(1, inter, inter, bias=True)
        + 1
    )  # PAM
    head += 1  # CAM gamma
    head += 2 * (conv_params(3, inter, inter) + bn(inter))  # conv51, conv52
    head += 3 * conv_params(1, inter, num_classes, bias=True)  # conv6, conv7, conv8
    return total + head


def test_resnet50_parameter_count_equals_the_official_model():
    expected = official_danet_resnet50_parameter_count(19)
    assert expected == 47_462_651  # the figure quoted for the official model
    model = DANet(num_classes=19, backbone="resnet50", stem="standard")
    assert trainable_count(model) == expected


@pytest.mark.parametrize(
    "attention, keys",
    [
        (("position", "channel"), {"logits", "position_logits", "channel_logits"}),
        (("position",), {"logits"}),
        (("channel",), {"logits"}),
        ((), {"logits"}),
    ],
)
def test_outputs_for_each_attention_setting(attention, keys):
    model = DANet(5, backbone="resnet18", attention=attention, head_channels=32)
    outputs = model(np.zeros((1, 33, 47, 3), "float32"))
    assert set(outputs) == keys
    for value in outputs.values():
        assert value.shape == (1, 33, 47, 5)
    names = {layer.name for layer in model.layers}
    assert ("position_attention" in names) == ("position" in attention)
    assert ("channel_attention" in names) == ("channel" in attention)


def test_aux_head_is_on_stage3():
    model = DANet(4, backbone="resnet18", aux_head=True, aux_channels=16, head_channels=32)
    outputs = model(np.zeros((2, 41, 41, 3), "float32"))
    assert set(outputs) == {"logits", "position_logits", "channel_logits", "aux_logits"}
    assert outputs["aux_logits"].shape == (2, 41, 41, 4)
    assert model.get_layer("aux_conv").kernel.shape == (3, 3, 256, 16)


# Every output stride on both block kinds (basic: resnet18, bottleneck: resnet50); the
# deeper ones differ from those only in their block counts, so output stride 8 (DANet's).
@pytest.mark.slow
@pytest.mark.parametrize(
    "backbone, output_strides",
    [
        ("resnet18", (8, 16, 32)),
        ("resnet34", (8,)),
        ("resnet50", (8, 16, 32)),
        ("resnet101", (8,)),
        ("resnet152", (8,)),
    ],
)
def test_every_depth_and_output_stride_gives_input_sized_logits(backbone, output_strides):
    images = np.random.default_rng(0).uniform(0, 255, size=(1, 65, 97, 3)).astype("float32")
    for output_stride in output_strides:
        keras.backend.clear_session()
        model = DANet(3, backbone=backbone, output_stride=output_stride, head_channels=32)
        outputs = model(images)
        assert outputs["logits"].shape == (1, 65, 97, 3)
        assert np.all(np.isfinite(outputs["logits"]))


def test_one_model_serves_any_input_size():
    model = DANet(3, backbone="resnet18", head_channels=32, align_corners=True, multi_grid=(2, 4))
    for shape in [(1, 17, 23, 3), (2, 64, 40, 3), (1, 1, 1, 3)]:
        assert model.predict(np.zeros(shape, "float32"), verbose=0)["logits"].shape == shape[:3] + (
            3,
        )


@pytest.mark.parametrize("align_corners", [True, False])
def test_a_traced_model_serves_sizes_known_only_at_run_time(align_corners):
    model = DANet(3, backbone="resnet18", head_channels=32, align_corners=align_corners)
    serve = tf.function(
        lambda x: model(x)["logits"], input_signature=[tf.TensorSpec((None, None, None, 3))]
    )
    for shape in [(1, 37, 29, 3), (2, 16, 64, 3)]:
        images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
        # A traced graph against eager layers: other kernels, other rounding.
        assert_logits_close(serve(images), model(images)["logits"])


def test_attention_modules_start_as_identity():
    model = DANet(3, backbone="resnet18", head_channels=32)
    assert float(model.get_layer("position_attention").gamma.numpy()) == 0.0
    assert float(model.get_layer("channel_attention").beta.numpy()) == 0.0


def _perturb_attention_and_batchnorm(model, seed=0):
    rng = np.random.default_rng(seed)
    model.get_layer("position_attention").gamma.assign(0.7)
    model.get_layer("channel_attention").beta.assign(0.4)
    for layer in model.backbone.layers + model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [gamma, rng.normal(0, 0.1, beta.shape), mean, rng.uniform(0.5, 2, var.shape)]
            )


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = DANet(
        6,
        backbone="resnet18",
        head_channels=32,
        aux_head=True,
        aux_channels=16,
        align_corners=True,
        attention_block_size=16,
        stem="deep",
    )
    _perturb_attention_and_batchnorm(model)
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 45, 61, 3)).astype("float32")
    expected = model.predict(images, verbose=0)
    path = str(tmp_path / "danet.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored) is DANet
    assert restored.get_config() == model.get_config()
    actual = restored.predict(images, verbose=0)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key])


def test_config_round_trip_rebuilds_the_same_architecture():
    model = DANet(7, backbone="resnet34", output_stride=16, attention=("channel",), dropout=0.2)
    clone = DANet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert trainable_count(clone) == trainable_count(model)


@pytest.mark.parametrize(
    "policy",
    ["mixed_float16", pytest.param("mixed_bfloat16", marks=skip_bfloat16_where_capped_away())],
)
def test_mixed_precision_forward_is_finite(policy):
    try:
        keras.mixed_precision.set_global_policy(policy)
        model = DANet(4, backbone="resnet18", head_channels=32, aux_head=True, aux_channels=16)
        _perturb_attention_and_batchnorm(model)
        images = np.random.default_rng(2).uniform(0, 255, size=(1, 64, 64, 3)).astype("float32")
        outputs = model(images)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("position_attention").compute_dtype == policy.split("_")[1]
    for value in outputs.values():
        assert value.dtype == "float32"
        assert np.all(np.isfinite(value))


def test_head_and_backbone_are_separable():
    model = DANet(3, backbone="resnet18", head_channels=32)
    assert model.backbone.name == "backbone"
    backbone_vars = {id(v) for v in model.backbone.trainable_variables}
    head_vars = [v for layer in model.head_layers for v in layer.trainable_variables]
    assert head_vars and not backbone_vars & {id(v) for v in head_vars}
    assert len(backbone_vars) + len(head_vars) == len(model.trainable_variables)


def test_presets_are_valid_configurations():
    for name in PRESETS:
        config = preset_config(name)
        assert config["num_classes"] >= 1
    small = DANet.from_preset("danet_resnet50_cityscapes", backbone="resnet18", num_classes=3)
    assert small.align_corners and small.num_classes == 3
    with pytest.raises(ValueError, match="preset"):
        DANet.from_preset("danet_vgg16")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"num_classes": 3, "backbone": "resnet42"}, "backbone"),
        ({"num_classes": 3, "backbone": "vgg16"}, "backbone"),
        ({"num_classes": 3, "output_stride": 12}, "output_stride"),
        ({"num_classes": 3, "backbone": "resnet18", "multi_grid": (4, 8, 16)}, "multi_grid"),
        ({"num_classes": 3, "attention": ("spatial",)}, "attention"),
        ({"num_classes": 3, "input_shape": (None, None, 4)}, "input_shape"),
        ({"num_classes": 3, "stem": "tiny"}, "stem"),
        ({"num_classes": 3, "backbone": "resnet18", "backbone_weights": "imagenet"}, "50, 101"),
        ({"num_classes": 3, "backbone_weights": "/no/such/file.h5"}, "backbone_weights"),
        # The layout asked for stays: ImageNet weights say which backbone has theirs.
        ({"num_classes": 3, "backbone_weights": "imagenet"}, "backbone='resnet50_imagenet'"),
        (
            {"num_classes": 3, "backbone": "resnet101_imagenet", "backbone_weights": "/no/file"},
            "no file",
        ),
    ],
)
def test_bad_arguments_raise_value_errors_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DANet(**kwargs)


def test_images_with_other_than_three_channels_are_refused():
    model = DANet(3, backbone="resnet18", head_channels=32)
    with pytest.raises(ValueError):
        model(np.zeros((1, 32, 32, 4), "float32"))


def test_public_api():
    assert danet_keras.layers.PositionAttention is danet_keras.PositionAttention
    assert danet_keras.layers.ChannelAttention is danet_keras.ChannelAttention
    assert isinstance(danet_keras.__version__, str)


def test_a_backbone_object_and_the_name_shortcut_give_the_same_model():
    from danet_keras import DilatedResNet

    options = dict(output_stride=16, multi_grid=(2, 4), stem="deep")
    by_name = DANet(4, "resnet18", head_channels=16, **options)
    backbone = DilatedResNet.from_preset("resnet18", **options)
    by_object = DANet(4, backbone=backbone, head_channels=16)
    assert by_object.backbone is backbone
    assert by_object.get_config() == by_name.get_config()
    assert [w.shape for w in by_object.weights] == [w.shape for w in by_name.weights]
    by_object.set_weights(by_name.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (1, 40, 56, 3)).astype("float32")
    # Same weights, same layers, same process: exact.
    np.testing.assert_array_equal(by_object(images)["logits"], by_name(images)["logits"])
    # The backbone's own arguments belong to the backbone object.
    with pytest.raises(ValueError, match="output_stride.*DilatedResNet"):
        DANet(4, backbone=backbone, output_stride=8)


def test_config_serialises_the_backbone_object():
    model = DANet(3, backbone="resnet18", head_channels=16, sync_batchnorm=True)
    config = model.get_config()
    assert config["backbone"]["class_name"] == "DilatedResNet"
    assert config["backbone"]["config"]["depth"] == 18
    assert config["backbone"]["config"]["sync_batchnorm"] is True
    assert DANet.from_config(config).get_config() == config


def test_a_preset_directory_round_trips_config_and_weights(tmp_path):
    model = DANet(3, backbone="resnet18", head_channels=16, aux_head=True, aux_channels=8)
    _perturb_attention_and_batchnorm(model)
    directory = model.save_to_preset(str(tmp_path / "preset"), metadata={"source": "test"})
    assert sorted(os.listdir(directory)) == [
        MARKER, "config.json", "metadata.json", "model.weights.h5",
    ]  # fmt: skip
    metadata = json.loads((tmp_path / "preset" / "metadata.json").read_text())
    assert metadata["class_name"] == "DANet" and metadata["source"] == "test"
    assert metadata["parameter_count"] == model.count_params()
    restored = DANet.from_preset(directory)
    assert restored.get_config() == model.get_config()
    images = np.random.default_rng(2).uniform(0, 255, (1, 40, 56, 3)).astype("float32")
    np.testing.assert_array_equal(restored(images)["logits"], model(images)["logits"])
    fresh = DANet.from_preset(directory, load_weights=False)
    assert not np.array_equal(fresh(images)["logits"], model(images)["logits"])
    # Overrides that keep the weight shapes.
    assert DANet.from_preset(directory, attention_block_size=8).attention_block_size == 8


def test_class_names_and_colours_travel_with_the_model(tmp_path):
    from danet_keras.data.classes import DATASETS

    names, palette = ["sky", "road", "car"], [[70, 130, 180], [128, 64, 128], [0, 0, 142]]
    model = DANet(3, backbone="resnet18", head_channels=16, class_names=names, palette=palette)
    assert model.class_names == tuple(names) and model.palette == tuple(map(tuple, palette))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.class_names == tuple(names) and loaded.palette == model.palette
    restored = DANet.from_preset(model.save_to_preset(str(tmp_path / "preset")))
    assert restored.class_names == tuple(names) and restored.palette == model.palette
    # A model saved before models carried classes (no such keys) loads without them.
    config = model.get_config()
    del config["class_names"], config["palette"]
    assert DANet.from_config(config).class_names is None
    # A named preset's configuration names the classes of its dataset.
    zoo = DANet.from_preset("danet_resnet50_cityscapes", load_weights=False, backbone="resnet18")
    assert zoo.class_names == DATASETS["cityscapes"].class_names
    with pytest.raises(ValueError, match="class_names"):
        DANet(3, backbone="resnet18", class_names=["sky", "road"])
    with pytest.raises(ValueError, match="palette"):
        DANet(3, backbone="resnet18", palette=[[0, 0, 0]] * 4)


def test_a_named_preset_loads_installed_weights_or_says_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DANET_KERAS_HOME", str(tmp_path))
    # The official release is on Google Drive, which no plain URL fetches: installed by hand.
    official = "danet_resnet101_cityscapes"
    with pytest.raises(FileNotFoundError, match=r"drive\.google\.com.*--preset " + official):
        DANet.from_preset(official)
    name = "danet_resnet101_d8_voc12aug_mmseg"
    # Installed in the cache (as `danet-keras convert CHECKPOINT --preset NAME` does, or the
    # first download); a small stand-in model keeps the test fast and offline.
    small = DANet(21, backbone="resnet18", head_channels=16)
    small.save_to_preset(str(tmp_path / "presets" / name))
    loaded = DANet.from_preset(name)
    assert loaded.get_config() == small.get_config()
    # A preset without published weights builds fresh ones.
    assert (
        DANet.from_preset(
            "danet_resnet50_cityscapes", backbone="resnet18", num_classes=2
        ).num_classes
        == 2
    )


@pytest.mark.parametrize("order", ["danet_keras first", "keras first"])
def test_plain_keras_load_model_works_after_import_danet_keras(tmp_path, order):
    import subprocess
    import sys

    path = str(tmp_path / "danet.keras")
    DANet(3, backbone="resnet18", head_channels=16).save(path)
    imports = (
        "import danet_keras, keras" if order == "danet_keras first" else "import keras, danet_keras"
    )
    code = f"{imports}\nprint(type(keras.saving.load_model({path!r})).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "DANet", result.stderr[-2000:]


def test_from_preset_overrides_reach_the_backbone(tmp_path):
    model = DANet(3, backbone="resnet18", head_channels=16)
    directory = model.save_to_preset(str(tmp_path / "preset"))
    for preset in (directory, "danet_resnet50_cityscapes"):
        options = {} if preset == directory else {"load_weights": False, "backbone": "resnet18"}
        restored = DANet.from_preset(preset, output_stride=16, sync_batchnorm=True, **options)
        assert restored.backbone.output_stride == 16
        assert restored.backbone.sync_batchnorm and restored.sync_batchnorm
    # The weights still load: the overrides change no weight's shape.
    restored = DANet.from_preset(directory, output_stride=16)
    for saved, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())


def test_remat_is_a_setting_of_the_backbone_that_travels_with_the_model(tmp_path):
    model = DANet(3, backbone="resnet18", head_channels=16, remat=True)
    assert model.remat and model.backbone.remat and model.get_config()["remat"]
    backbone = danet_keras.DilatedResNet(depth=18)
    assert DANet(3, backbone=backbone, head_channels=16, remat=True).backbone.remat
    assert not DANet(3, backbone="resnet18", head_channels=16).remat
    path = str(tmp_path / "remat.keras")
    model.save(path)
    assert keras.saving.load_model(path).remat
    directory = DANet(3, backbone="resnet18", head_channels=16).save_to_preset(str(tmp_path / "p"))
    assert DANet.from_preset(directory, remat=True).backbone.remat


@pytest.mark.slow
def test_fit_with_remat_takes_the_same_step():
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, size=(2, 32, 32))
    weights = {}
    for remat in (False, True):
        keras.utils.set_random_seed(5)
        model = DANet(3, backbone="resnet18", head_channels=16, dropout=0.0, remat=remat)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(images, labels, batch_size=2, epochs=1, verbose=0, shuffle=False)
        weights[remat] = [w.numpy() for w in model.weights]
    for plain, remat in zip(weights[False], weights[True]):
        assert_logits_close(remat, plain)
