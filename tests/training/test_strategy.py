import json

import pytest
import tensorflow as tf

from danet_keras.training.strategy import (
    BACKEND_STRATEGIES,
    KerasDistribution,
    check_strategy,
    is_chief,
    make_strategy,
    task_identity,
    tf_config,
)


def cluster(task_type, index, with_chief=False):
    spec = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    if with_chief:
        spec["chief"] = ["127.0.0.1:3"]
    return json.dumps({"cluster": spec, "task": {"type": task_type, "index": index}})


def test_chief_rules(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief() and task_identity() == ("worker", 0) and tf_config() == {}
    monkeypatch.setenv("TF_CONFIG", cluster("worker", 0))
    assert is_chief()
    monkeypatch.setenv("TF_CONFIG", cluster("worker", 1))
    assert not is_chief() and task_identity() == ("worker", 1)
    monkeypatch.setenv("TF_CONFIG", cluster("worker", 0, with_chief=True))
    assert not is_chief()
    monkeypatch.setenv("TF_CONFIG", cluster("chief", 0, with_chief=True))
    assert is_chief()


@pytest.mark.parametrize("value", ["{not json", '{"cluster": {}}', cluster("ps", 0)])
def test_bad_tf_config(monkeypatch, value):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        tf_config()


def test_names(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError, match="strategy"):
        make_strategy("horovod")
    assert isinstance(make_strategy("auto"), tf.distribute.OneDeviceStrategy)
    assert make_strategy("mirrored").num_replicas_in_sync == 1


@pytest.mark.parametrize(
    "name, backend, owner",
    [
        ("mirrored", "jax", "tensorflow"),
        ("multi_worker", "torch", "tensorflow"),
        ("tpu", "jax", "tensorflow"),
        ("data_parallel", "tensorflow", "jax"),
        ("data_parallel", "torch", "jax"),
    ],
)
def test_a_strategy_of_another_backend_is_refused_in_one_line(name, backend, owner):
    message = f"needs KERAS_BACKEND={owner}; this process runs {backend}"
    with pytest.raises(ValueError, match=message) as error:
        check_strategy(name, backend)
    assert "\n" not in str(error.value)
    for offered in BACKEND_STRATEGIES[backend]:
        check_strategy(offered, backend)
    with pytest.raises(ValueError, match="must be one of"):
        check_strategy("horovod", backend)


def test_one_device_distribution_of_jax_and_pytorch():
    one = KerasDistribution(None, "cpu")
    assert one.num_replicas_in_sync == 1
    with one.scope():
        pass
    assert one.distribute_datasets_from_function(lambda context: context) is None
