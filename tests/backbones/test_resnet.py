import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras.backbones import DilatedResNet, load_keras_applications_weights
from danet_keras.models.dilated_resnet import RESNET_DEPTHS, stage_plan

from ..numerics import KERNEL_ORDER_RTOL, assert_close_to_scale


def torch_conv_out(size, stride):
    """Output size of PyTorch's 3x3 (or 7x7) conv / max pool with padding k // 2."""
    return (size - 1) // stride + 1


def test_stage_plan_output_stride_8_halves_the_first_dilation():
    plan = stage_plan(8, (3, 4, 6, 3))
    assert [stride for stride, _ in plan] == [1, 2, 1, 1]
    assert plan[2][1] == [1, 2, 2, 2, 2, 2]
    assert plan[3][1] == [2, 4, 4]


def test_stage_plan_output_stride_16_and_32():
    plan16 = stage_plan(16, (3, 4, 6, 3))
    assert [s for s, _ in plan16] == [1, 2, 2, 1]
    assert plan16[3][1] == [1, 2, 2]
    plan32 = stage_plan(32, (3, 4, 6, 3))
    assert [s for s, _ in plan32] == [1, 2, 2, 2]
    assert all(d == 1 for _, dilations in plan32 for d in dilations)


def test_multi_grid_dilations_are_cycled_without_halving():
    assert stage_plan(8, (3, 4, 23, 3), multi_grid=(4, 8, 16))[3][1] == [4, 8, 16]
    assert stage_plan(8, (3, 4, 6, 3), multi_grid=(2, 4))[3][1] == [2, 4, 2]


def test_dilations_reach_the_convolutions():
    backbone = DilatedResNet(depth=50, output_stride=8, multi_grid=(4, 8, 16))
    assert backbone.get_layer("stage3_block0_conv2").dilation_rate == (1, 1)
    assert backbone.get_layer("stage3_block1_conv2").dilation_rate == (2, 2)
    assert [backbone.get_layer(f"stage4_block{b}_conv2").dilation_rate[0] for b in range(3)] == [
        4,
        8,
        16,
    ]
    # PyTorch conventions: no conv bias, BatchNorm epsilon 1e-5, momentum 0.1.
    assert not backbone.get_layer("stage1_block0_conv1").use_bias
    bn = backbone.get_layer("stage1_block0_bn1")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_sizes_follow_pytorch_arithmetic(output_stride):
    h, w = 65, 97
    backbone = DilatedResNet(depth=18, output_stride=output_stride)
    features = backbone(np.zeros((1, h, w, 3), "float32"))
    sizes = [(h, w)]
    for stride in (2, 2):  # stem conv, max pool
        sizes.append(tuple(torch_conv_out(s, stride) for s in sizes[-1]))
    expected = {"stage1": sizes[-1]}
    strides = {8: (2, 1, 1), 16: (2, 2, 1), 32: (2, 2, 2)}[output_stride]
    current = sizes[-1]
    for stage, stride in zip(("stage2", "stage3", "stage4"), strides):
        current = tuple(torch_conv_out(s, stride) for s in current)
        expected[stage] = current
    for stage, size in expected.items():
        assert tuple(features[stage].shape[1:3]) == size, stage
    assert features["stage4"].shape[-1] == backbone.stage_channels[3] == 512


def test_deep_stem_widths():
    backbone = DilatedResNet(depth=50, stem="deep")
    assert [backbone.get_layer(f"stem_conv{i}").filters for i in (1, 2, 3)] == [32, 32, 64]
    official = DilatedResNet(depth=50, stem="deep", stem_width=64)
    assert official.get_layer("stem_conv3").filters == 128
    # The first bottleneck projects the 128 stem channels to 256.
    assert official.get_layer("stage1_block0_downsample_conv").kernel.shape == (1, 1, 128, 256)


def test_basic_block_backbones_have_no_downsample_in_stage1():
    backbone = DilatedResNet(depth=34)
    names = {layer.name for layer in backbone.layers}
    assert "stage1_block0_downsample_conv" not in names
    assert "stage2_block0_downsample_conv" in names
    assert sum(name.startswith("stage3_block") and name.endswith("_conv1") for name in names) == 6


def test_config_round_trip():
    backbone = DilatedResNet(depth=18, output_stride=16, multi_grid=(1, 2), stem="deep")
    clone = DilatedResNet.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    assert clone.count_params() == backbone.count_params()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 42}, "depth"),
        ({"output_stride": 4}, "output_stride"),
        ({"stem": "wide"}, "stem"),
        ({"block_layout": "caffe"}, "block_layout"),
        ({"depth": 18, "multi_grid": (4, 8, 16)}, "multi_grid"),
        ({"multi_grid": ()}, "multi_grid"),
        ({"multi_grid": (4, 0)}, "multi_grid"),
        ({"output_stride": 32, "multi_grid": (1, 2)}, "multi_grid"),
        ({"depth": 18, "block_layout": "keras"}, "block_layout"),
    ],
)
def test_bad_arguments_raise_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DilatedResNet(**kwargs)


def _randomize_batchnorm_statistics(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )


@pytest.mark.slow
@pytest.mark.parametrize("include_top", [False, True])
def test_keras_applications_weights_reproduce_keras_features(tmp_path, include_top):
    reference = keras.applications.ResNet50(
        weights=None,
        include_top=include_top,
        input_shape=(None, None, 3) if not include_top else None,
    )
    _randomize_batchnorm_statistics(reference)
    path = str(tmp_path / "resnet50.weights.h5")
    reference.save_weights(path)

    backbone = DilatedResNet(depth=50, output_stride=32, block_layout="keras")
    assert load_keras_applications_weights(backbone, path) == 53 * 2
    images = np.random.default_rng(0).uniform(0, 255, size=(1, 224, 224, 3)).astype("float32")
    x = keras.applications.resnet.preprocess_input(images.copy())
    if include_top:
        body = keras.Model(reference.input, reference.get_layer("conv5_block3_out").output)
        expected = body(x)
    else:
        expected = reference(x)
    # Two graphs of the same weights (53 convolutions, reductions of up to
    # 4,608 terms): kernel rounding, bounded as for logits (tests/numerics.py).
    assert_close_to_scale(backbone(x)["stage4"], expected, KERNEL_ORDER_RTOL, "stage4 features")
    # The same weights serve a dilated backbone (no weight shape depends on the stride).
    dilated = DilatedResNet(depth=50, output_stride=8, block_layout="keras")
    load_keras_applications_weights(dilated, path)
    assert dilated(x)["stage4"].shape == (1, 28, 28, 2048)


def test_keras_weights_need_the_keras_layout(tmp_path):
    with pytest.raises(ValueError, match="block_layout"):
        load_keras_applications_weights(DilatedResNet(depth=18), "imagenet")


def test_depth_table_matches_resnet_definitions():
    # Layer counts of ResNet-d: 2 + 3 * blocks (bottleneck) or 2 + 2 * blocks (basic).
    for depth, (kind, blocks) in RESNET_DEPTHS.items():
        per_block = 3 if kind == "bottleneck" else 2
        assert 2 + per_block * sum(blocks) == depth


def test_backbone_presets_build_and_round_trip_through_a_directory(tmp_path):
    from danet_keras.backbones import BACKBONE_PRESETS

    assert {"resnet50", "resnet101_v1c", "resnet101_imagenet"} <= set(BACKBONE_PRESETS)
    backbone = DilatedResNet.from_preset("resnet50_v1c", output_stride=16)
    assert (backbone.depth, backbone.stem, backbone.stem_width) == (50, "deep", 32)
    assert backbone.output_stride == 16
    small = DilatedResNet.from_preset("resnet18", multi_grid=(1, 2))
    directory = small.save_to_preset(str(tmp_path / "resnet18"))
    restored = DilatedResNet.from_preset(directory)
    assert restored.get_config() == small.get_config()
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(restored(x)["stage4"], small(x)["stage4"])
    with pytest.raises(ValueError, match="Unknown backbone preset"):
        DilatedResNet.from_preset("vgg16")


def test_from_keras_applications_loads_a_local_weights_file(tmp_path):
    reference = keras.applications.ResNet50(weights=None, include_top=False)
    path = str(tmp_path / "resnet50.weights.h5")
    reference.save_weights(path)
    backbone = DilatedResNet.from_keras_applications(50, path, output_stride=16)
    assert backbone.block_layout == "keras" and backbone.output_stride == 16
    kernel = reference.get_layer("conv5_block3_3_conv").get_weights()[0]
    np.testing.assert_array_equal(
        backbone.get_layer("conv5_block3_3_conv").get_weights()[0], kernel
    )


def _training_step(backbone, images):
    """Features' squared sum, its gradients and the BatchNorm statistics after one step."""

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            features = backbone(x, training=True)
            loss = sum(tf.reduce_sum(tf.square(f)) for f in features.values())
        return loss, tape.gradient(loss, backbone.trainable_variables)

    loss, gradients = step(tf.constant(images))
    state = [v.numpy() for v in backbone.non_trainable_variables]
    return float(loss), [g.numpy() for g in gradients], state


@pytest.mark.parametrize(
    "block_layout, depth", [("torch", 18), pytest.param("keras", 50, marks=pytest.mark.slow)]
)
def test_remat_gives_the_same_loss_gradients_and_statistics(block_layout, depth):
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    steps = {}
    for remat in (False, True):
        keras.utils.set_random_seed(7)
        backbone = DilatedResNet(depth=depth, block_layout=block_layout, remat=remat)
        steps[remat] = _training_step(backbone, images)
    (loss, gradients, state), (remat_loss, remat_gradients, remat_state) = steps[False], steps[True]
    # The same ops in the same process, run again: only the graph's kernel choices may differ.
    np.testing.assert_allclose(remat_loss, loss, rtol=KERNEL_ORDER_RTOL)
    # One scale for all gradients: a bias ahead of BatchNorm has a true gradient
    # of zero, so its computed one is the rounding left of sums of terms as large
    # as the other gradients' (the keras layout has such biases).
    flat = [np.concatenate([g.ravel() for g in grads]) for grads in (remat_gradients, gradients)]
    assert_close_to_scale(*flat, KERNEL_ORDER_RTOL, "gradients")
    for plain, remat in zip(state, remat_state):
        assert_close_to_scale(remat, plain, KERNEL_ORDER_RTOL, "BatchNorm statistics")


def test_remat_keeps_the_weights_config_and_inference_of_the_model(tmp_path):
    keras.utils.set_random_seed(8)
    plain = DilatedResNet(depth=18)
    remat = DilatedResNet(depth=18, remat=True)
    assert remat.get_config()["remat"] and not plain.get_config()["remat"]
    assert DilatedResNet.from_config(remat.get_config()).remat
    # The segments share the model's layers: no weight is tracked, saved or loaded twice.
    assert [w.path for w in remat.weights] == [w.path for w in plain.weights]
    path = str(tmp_path / "remat.weights.h5")
    remat.save_weights(path)
    plain.load_weights(path)
    images = np.random.default_rng(1).normal(size=(1, 24, 40, 3)).astype("float32")
    for training in (False, True):
        expected = plain(images, training=training)
        for name, value in remat(images, training=training).items():
            assert_close_to_scale(value, expected[name], KERNEL_ORDER_RTOL, name)
    remat.remat = False
    assert not remat.get_config()["remat"]
