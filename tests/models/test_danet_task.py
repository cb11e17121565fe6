"""DANet as a keras-hub task: compile() with the paper's recipe, plain labels, class maps,
fine-tuning a preset to other classes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from danet_keras import DANet
from danet_keras.data import eval_pipeline, load_dataset, make_demo_city
from danet_keras.losses import SegmentationCrossEntropy
from danet_keras.optimizers import LayerwiseSGD, PolyDecay

from ..numerics import KERNEL_ORDER_RTOL


def small_danet(num_classes=19, **options):
    config = dict(backbone="resnet18", output_stride=16, head_channels=16, **options)
    return DANet(num_classes, **config)


@pytest.fixture(scope="module")
def demo_city_arrays(tmp_path_factory):
    """(images, label maps) of a tiny demo city: 8 training scenes of 64x128, 255 ignored."""
    root = tmp_path_factory.mktemp("task") / "city"
    make_demo_city(root, num_train=8, num_val=1, size=(64, 128))
    images, labels = next(iter(eval_pipeline(load_dataset("demo_city", root, "train"), 8)))
    return images.numpy(), labels.numpy()


def learnable(count=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (count, size, size, 3)).astype("float32")
    labels = (images[..., 0] > 127).astype("int32")
    labels[:, :4] = 255  # ignored
    return images, labels


def test_compile_with_no_arguments_trains_on_plain_label_maps_of_the_demo_city(demo_city_arrays):
    images, labels = demo_city_arrays
    assert (labels == 255).any()  # the ignored label occurs
    model = small_danet()
    model.compile()
    history = model.fit(images, labels, batch_size=4, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses
    # The poly schedule's length was unknown at compile: fit set it to epochs x steps.
    assert model.optimizer.learning_rate_schedule.total_steps == 4 * 2
    scores = model.evaluate(images, labels, batch_size=8, verbose=0, return_dict=True)
    reference = keras.metrics.MeanIoU(19, ignore_class=255, sparse_y_pred=False)
    reference.update_state(labels, model.predict(images, verbose=0)["logits"])
    # The same graph's logits, reduced in another order.
    np.testing.assert_allclose(
        scores["logits_mean_iou"], float(reference.result()), rtol=KERNEL_ORDER_RTOL
    )
    assert 0 < scores["logits_mean_iou"] <= 1
    # train_on_batch takes plain labels too, and continues the schedule.
    logs = model.train_on_batch(images[:2], labels[:2], return_dict=True)
    assert np.isfinite(logs["loss"]) and int(model.optimizer.iterations.numpy()) == 9


def cross_entropy(logits, labels, ignore_index=255):
    """Mean softmax cross entropy over the pixels not ignored, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != ignore_index
    picked = np.take_along_axis(log_probabilities, np.where(valid, labels, 0)[..., None], -1)
    return -picked[..., 0][valid].mean()


def test_the_default_recipe_is_the_papers():
    model = small_danet(3, aux_head=True, aux_channels=8)
    model.compile()
    optimizer = model.optimizer
    assert isinstance(optimizer, LayerwiseSGD)
    assert optimizer.momentum == 0.9 and optimizer.coupled_weight_decay == 1e-4
    schedule = optimizer.learning_rate_schedule
    assert isinstance(schedule, PolyDecay)
    assert (schedule.base_learning_rate, schedule.power, schedule.total_steps) == (0.01, 0.9, None)
    backbone = {v.path for v in model.backbone.trainable_variables}
    head = {v.path for v in model.trainable_variables} - backbone
    assert set(optimizer.learning_rate_multipliers) == head
    assert set(optimizer.learning_rate_multipliers.values()) == {10.0}

    # One cross entropy per output, ignoring 255, the auxiliary head's at 0.4.
    images, labels = learnable()
    scores = model.evaluate(images, labels, batch_size=len(images), verbose=0, return_dict=True)
    outputs = model.predict(images, verbose=0)
    expected = {name: cross_entropy(outputs[name], labels) for name in outputs}
    for name, value in expected.items():
        # float32 graph against float64 numpy over a few thousand pixels.
        np.testing.assert_allclose(scores[f"{name}_loss"], value, rtol=1e-4)
    total = sum(value * (0.4 if name == "aux_logits" else 1.0) for name, value in expected.items())
    np.testing.assert_allclose(scores["loss"], total, rtol=1e-4)
    assert set(scores) == {f"{name}_loss" for name in outputs} | {"loss", "logits_mean_iou"}


def test_every_part_of_the_recipe_can_be_overridden():
    images, labels = learnable()
    model = small_danet(2)
    model.compile(learning_rate=0.05, total_steps=7, loss_weights={"position_logits": 0.0})
    schedule = model.optimizer.learning_rate_schedule
    assert (schedule.base_learning_rate, schedule.total_steps) == (0.05, 7)
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert "position_logits_loss" not in logs and "channel_logits_loss" in logs

    # One loss of your own goes on every output, with the recipe's weights. (Eager from here:
    # what is checked is which losses and metrics run, and tracing each would take seconds.)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=SegmentationCrossEntropy(ohem_threshold=0.7, ohem_min_kept=10),
        metrics=[],
        run_eagerly=True,
    )
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert {"logits_loss", "position_logits_loss", "channel_logits_loss"} <= set(logs)
    assert not any("mean_iou" in key for key in logs)
    assert isinstance(model.optimizer, keras.optimizers.Adam)

    # A dict of losses is Keras' own: the outputs it names, unweighted unless told.
    model.compile(
        loss={"logits": SegmentationCrossEntropy()}, total_steps=3, ignore_index=0, run_eagerly=True
    )
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert "position_logits_loss" not in logs and "logits_mean_iou" in logs

    with pytest.raises(ValueError, match="learning_rate.*optimizer='auto'"):
        model.compile(optimizer="adam", learning_rate=0.1)
    with pytest.raises(ValueError, match="ignore_index.*loss='auto'"):
        model.compile(loss={"logits": SegmentationCrossEntropy()}, metrics=[], ignore_index=0)


def test_the_schedule_length_comes_from_total_steps_or_from_fit():
    images, labels = learnable()
    model = small_danet(2)
    model.compile(run_eagerly=True)  # eager: the refusal comes before any step either way
    with pytest.raises(ValueError, match="no length yet.*total_steps"):
        model.train_on_batch(images, labels)
    # A tf.data.Dataset of plain pairs: its batches are the steps per epoch.
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    model.compile()
    model.fit(dataset, epochs=3, verbose=0)
    assert model.optimizer.learning_rate_schedule.total_steps == 3 * 2
    # A later fit continues the same schedule (one compile, one run).
    model.fit(dataset, epochs=1, verbose=0)
    assert model.optimizer.learning_rate_schedule.total_steps == 6
    assert int(model.optimizer.iterations.numpy()) == 8
    # Data of unknown length need `steps_per_epoch` (or `total_steps`).
    model.compile()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(dataset.filter(lambda x, y: True), epochs=1, verbose=0)


def test_a_compiled_model_saves_and_loads_with_its_recipe(tmp_path):
    images, labels = learnable()
    model = small_danet(2)
    model.compile()
    model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "danet.keras")
    loaded = keras.saving.load_model(tmp_path / "danet.keras")
    assert isinstance(loaded.optimizer, LayerwiseSGD)
    assert loaded.optimizer.learning_rate_schedule.total_steps == 2
    assert loaded.optimizer.learning_rate_multipliers == model.optimizer.learning_rate_multipliers
    scores = loaded.evaluate(images, labels, verbose=0, return_dict=True)
    assert "logits_mean_iou" in scores


def test_predict_class_map_gives_each_image_its_own_size():
    model = small_danet(4)
    rng = np.random.default_rng(1)
    big, small = (rng.uniform(0, 255, s).astype("uint8") for s in [(48, 64, 3), (33, 21, 3)])
    class_maps = model.predict_class_map([big, small, small])
    assert [m.shape for m in class_maps] == [(48, 64), (33, 21), (33, 21)]
    assert all(m.dtype == np.int32 for m in class_maps)
    logits = model.predict(big[None], verbose=0)["logits"][0]
    np.testing.assert_array_equal(class_maps[0], logits.argmax(-1))

    batch = np.stack([big, big])
    class_ids, probabilities = model.predict_class_map(batch, return_probabilities=True)
    assert class_ids.shape == (2, 48, 64) and probabilities.shape == (2, 48, 64, 4)
    np.testing.assert_array_equal(class_ids, probabilities.argmax(-1))
    # float32 softmax: its sum is 1 to rounding.
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    maps, probabilities = model.predict_class_map([small], return_probabilities=True)
    assert maps[0].shape == (33, 21) and probabilities[0].shape == (33, 21, 4)

    with pytest.raises(ValueError, match=r"images\[1\]"):
        model.predict_class_map([big, big[..., :2]])
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        model.predict_class_map(big)


def test_from_preset_with_other_classes_keeps_every_weight_but_the_classifiers(
    tmp_path, monkeypatch
):
    from danet_keras.data.classes import DATASETS

    monkeypatch.setenv("DANET_KERAS_HOME", str(tmp_path))
    name = "danet_resnet101_d8_voc12aug_mmseg"
    voc = DATASETS["pascal_voc"]
    trained = small_danet(
        21,
        aux_head=True,
        aux_channels=8,
        class_names=voc.class_names,
        palette=voc.palette,
    )
    rng = np.random.default_rng(0)
    for variable in trained.weights:  # weights unlike any fresh initialisation
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    # Installed as `danet-keras convert` or the first download installs it.
    trained.save_to_preset(str(tmp_path / "presets" / name))

    for preset in (name, str(tmp_path / "presets" / name)):
        tuned = DANet.from_preset(preset, num_classes=5, class_names=list("abcde"))
        assert tuned.num_classes == 5 and tuned.class_names == tuple("abcde")
        for saved, kept in zip(trained.backbone.weights, tuned.backbone.weights):
            np.testing.assert_array_equal(kept.numpy(), saved.numpy())  # bit for bit
        classifiers = {layer.name for layer in tuned.classifier_layers}
        assert classifiers == {f"{n}_classifier" for n in ("fused", "position", "channel", "aux")}
        for layer in tuned.head_layers:
            saved = trained.get_layer(layer.name).get_weights()
            if layer.name in classifiers:
                kernel = layer.get_weights()[0]
                assert kernel.shape[-1] == 5 and kernel.shape[:-1] == saved[0].shape[:-1]
                continue
            for kept, value in zip(layer.get_weights(), saved):
                np.testing.assert_array_equal(kept, value)
    # Without names, the new classes have none (the saved ones named 21 others).
    assert DANet.from_preset(name, num_classes=3).class_names is None
    assert DANet.from_preset(name, num_classes=3, load_weights=False).num_classes == 3
    # The same class count loads every weight.
    same = DANet.from_preset(name)
    np.testing.assert_array_equal(
        same.get_layer("fused_classifier").kernel.numpy(),
        trained.get_layer("fused_classifier").kernel.numpy(),
    )
