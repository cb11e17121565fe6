"""Distribution tests: each runs in fresh processes (logical CPU devices, TF_CONFIG)."""

import json
import socket
import textwrap

import numpy as np
import pytest

TINY_MODEL = '{"backbone": "resnet18", "head_channels": 16}'


def last_json_line(output):
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


@pytest.mark.slow
def test_metric_sums_confusion_matrices_over_two_replicas(run_python):
    output = run_python(
        """
        import json
        from danet_keras.training.strategy import configure_logical_cpus, make_strategy
        configure_logical_cpus(2)
        import numpy as np
        import tensorflow as tf
        from danet_keras.metrics import MeanIoU

        strategy = make_strategy("mirrored")
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 5, (8, 9, 11)).astype("int32")
        labels[rng.random(labels.shape) < 0.2] = 255
        logits = rng.normal(size=(8, 9, 11, 5)).astype("float32")
        with strategy.scope():
            metric = MeanIoU(5)
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((labels, logits)).batch(4))

        @tf.function
        def update(batch):
            strategy.run(metric.update_state, args=batch)

        for batch in dataset:
            update(batch)
        local = strategy.experimental_local_results(metric.total_confusion_matrix.value)
        print(json.dumps({
            "replicas": strategy.num_replicas_in_sync,
            "local_totals": [int(np.asarray(v).sum()) for v in local],
            "matrix": np.asarray(metric.confusion_matrix()).tolist(),
            "mean_iou": float(metric.result()),
            "labels": labels.tolist(),
            "predictions": logits.argmax(-1).tolist(),
        }))
        """
    )
    result = last_json_line(output)
    labels, predictions = np.array(result["labels"]), np.array(result["predictions"])
    keep = labels != 255
    expected = np.zeros((5, 5), np.int64)
    np.add.at(expected, (labels[keep], predictions[keep]), 1)
    assert result["replicas"] == 2
    # Each replica counted part of the pixels; the metric reads their sum.
    assert all(0 < total < keep.sum() for total in result["local_totals"])
    assert sum(result["local_totals"]) == keep.sum()
    np.testing.assert_array_equal(np.array(result["matrix"]), expected)
    intersection = np.diag(expected)
    union = expected.sum(0) + expected.sum(1) - intersection
    np.testing.assert_allclose(
        result["mean_iou"], np.mean(intersection[union > 0] / union[union > 0]), rtol=1e-6
    )


@pytest.mark.slow
def test_fit_under_mirrored_strategy_with_synchronized_batchnorm(
    run_python, synthetic_data_code, tmp_path
):
    output = run_python(
        synthetic_data_code
        + textwrap.dedent(
            f"""
        import json
        from danet_keras.training.strategy import configure_logical_cpus
        configure_logical_cpus(2)
        from danet_keras.training.trainer import train

        result = train(
            dict(dataset="custom", num_classes=3, model={TINY_MODEL},
                 strategy="mirrored", epochs=4, steps_per_epoch=4, batch_size=4, learning_rate=0.01,
                 output_dir={str(tmp_path)!r}, tensorboard=False, verbose=0),
            train_data=synthetic_segmentation(16),
            val_data=synthetic_segmentation(4, seed=1),
        )
        batchnorms = [layer for layer in result.model.layers if layer.name.endswith("_bn")]
        print(json.dumps({{
            "replicas": result.model.distribute_strategy.num_replicas_in_sync,
            "synchronized": all(layer.synchronized for layer in batchnorms) and len(batchnorms) > 0,
            "loss": result.history["loss"],
            "best_mean_iou": result.best_mean_iou,
        }}))
        """
        )
    )
    result = last_json_line(output)
    assert result["replicas"] == 2
    assert result["synchronized"]
    losses = result["loss"]
    assert losses[-1] < 0.9 * losses[0], losses
    assert result["best_mean_iou"] is not None
    assert (tmp_path / "best.keras").exists() and (tmp_path / "final.keras").exists()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_training_keeps_workers_identical(start_python, synthetic_data_code, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    output_dir = tmp_path / "run"
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        # Each worker has its own data: only the gradient all-reduce can keep them equal.
        code = synthetic_data_code + textwrap.dedent(
            f"""
            from danet_keras.training.trainer import train

            result = train(
                dict(dataset="custom", num_classes=3, model={TINY_MODEL},
                     strategy="multi_worker", epochs=2,
                     steps_per_epoch=2, batch_size=4,
                     output_dir={str(output_dir)!r}, tensorboard=False, verbose=0),
                train_data=lambda: synthetic_segmentation(8, seed={index}),
                val_data=lambda: synthetic_segmentation(4, seed=9),
            )
            weights = [v.numpy() for v in result.model.weights]
            np.savez({str(tmp_path / f"weights{index}.npz")!r}, *weights)
            print("output_dir", result.output_dir)
            """
        )
        processes.append(start_python(code, env={"TF_CONFIG": tf_config}))
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=400)[0])
        finally:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-5000:]

    chief, worker = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert len(chief.files) > 50
    # Exact, across processes: both workers apply the same all-reduced
    # gradients with the same ops on the same machine, and synchronous
    # training is defined by its replicas never drifting apart.
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], worker[name])
    # The chief writes the checkpoints; worker 1 keeps only its own bookkeeping.
    assert (output_dir / "best.keras").exists() and (output_dir / "final.keras").exists()
    worker_dir = output_dir / "workers" / "worker_1"
    assert f"output_dir {worker_dir}" in outputs[1]
    assert not (worker_dir / "best.keras").exists() and not (worker_dir / "final.keras").exists()
