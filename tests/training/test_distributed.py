"""Distribution tests: each runs in fresh processes (logical CPU devices, TF_CONFIG)."""

import json
import socket
import subprocess
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
def test_fit_under_mirrored_strategy_with_synchronized_batchnorm_and_remat(
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
                 remat=True, output_dir={str(tmp_path)!r}, tensorboard=False, verbose=0),
            train_data=synthetic_segmentation(16),
            val_data=synthetic_segmentation(4, seed=1),
        )
        batchnorms = [layer for layer in result.model.layers if layer.name.endswith("_bn")]
        print(json.dumps({{
            "replicas": result.model.distribute_strategy.num_replicas_in_sync,
            "remat": result.model.remat,
            "synchronized": all(layer.synchronized for layer in batchnorms) and len(batchnorms) > 0,
            "loss": result.history["loss"],
            "best_mean_iou": result.best_mean_iou,
        }}))
        """
        )
    )
    result = last_json_line(output)
    assert result["replicas"] == 2
    assert result["synchronized"] and result["remat"]
    losses = result["loss"]
    assert losses[-1] < 0.9 * losses[0], losses
    assert result["best_mean_iou"] is not None
    assert (tmp_path / "best.keras").exists() and (tmp_path / "final.keras").exists()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


MULTI_WORKER_RUN = """
import json, os, signal
import keras
from danet_keras.training.trainer import train

class Probe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        print(json.dumps({{"start_step": step}}), flush=True)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)

result = train(
    dict(dataset="custom", num_classes=3, model={model}, strategy="multi_worker",
         epochs={epochs}, steps_per_epoch=2, batch_size=4, output_dir={output_dir!r},
         tensorboard=False, verbose=0),
    train_data=lambda: synthetic_segmentation(8, seed={index}),
    val_data=lambda: synthetic_segmentation(4, seed=9),
    callbacks=[Probe()],
)
np.savez({weights!r}, *[v.numpy() for v in result.model.weights])
print(json.dumps({{"end_step": int(result.model.optimizer.iterations.numpy()),
                  "output_dir": result.output_dir}}), flush=True)
"""


def run_cluster(start_python, synthetic_data_code, tmp_path, epochs, kill=None):
    """Two TF_CONFIG workers on 127.0.0.1; `kill=(worker, step)` SIGKILLs that worker there.

    When a worker dies, its peer is stuck in the next all-reduce: like a cluster manager,
    this kills the survivor too, so that both can be restarted.

    Returns:
        Per worker, `(returncode, json records printed, output)`.
    """
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        # Each worker has its own data: only the gradient all-reduce can keep them equal.
        code = synthetic_data_code + textwrap.dedent(
            MULTI_WORKER_RUN.format(
                model=TINY_MODEL, epochs=epochs, output_dir=str(tmp_path / "run"), index=index,
                weights=str(tmp_path / f"weights{index}.npz"),
            )
        ).replace(
            "KILL_AT_STEP", str(kill[1] if kill and kill[0] == index else -1)
        )  # fmt: skip
        processes.append(start_python(code, env={"TF_CONFIG": tf_config}))
    if kill:
        processes[kill[0]].wait(timeout=400)
        survivor = processes[1 - kill[0]]
        try:
            survivor.wait(timeout=20)  # it may fail on its own once its peer is gone
        except subprocess.TimeoutExpired:
            survivor.kill()
    results = []
    for process in processes:
        try:
            output = process.communicate(timeout=400)[0]
        finally:
            process.kill()
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        results.append((process.returncode, records, output))
    return results


def assert_workers_identical(tmp_path):
    chief, worker = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert len(chief.files) > 50
    # Exact, across processes: both workers apply the same all-reduced
    # gradients with the same ops on the same machine, and synchronous
    # training is defined by its replicas never drifting apart.
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], worker[name])


@pytest.mark.slow
def test_multi_worker_training_keeps_workers_identical(start_python, synthetic_data_code, tmp_path):
    results = run_cluster(start_python, synthetic_data_code, tmp_path, epochs=2)
    for returncode, _, output in results:
        assert returncode == 0, output[-5000:]
    assert_workers_identical(tmp_path)
    # The chief writes the checkpoints; worker 1 keeps only its own bookkeeping.
    output_dir = tmp_path / "run"
    assert (output_dir / "best.keras").exists() and (output_dir / "final.keras").exists()
    worker_dir = output_dir / "workers" / "worker_1"
    assert results[1][1][-1]["output_dir"] == str(worker_dir)
    assert not (worker_dir / "best.keras").exists() and not (worker_dir / "final.keras").exists()


@pytest.mark.slow
def test_multi_worker_job_resumes_after_a_worker_is_killed(
    start_python, synthetic_data_code, tmp_path
):
    # Worker 1 dies at step 3, in epoch 2, after the epoch-1 backups (step 2) of both workers.
    killed = run_cluster(start_python, synthetic_data_code, tmp_path, epochs=3, kill=(1, 3))
    assert killed[1][0] == -9, killed[1][2][-3000:]
    assert not (tmp_path / "weights0.npz").exists()  # the job did not finish
    # Both restarted: each resumes from its own last backup and the job finishes.
    resumed = run_cluster(start_python, synthetic_data_code, tmp_path, epochs=3)
    # A worker that fails often only sees its peer's socket close: show both.
    outputs = "\n".join(
        f"--- worker {i}:\n{output[-3000:]}" for i, (*_, output) in enumerate(resumed)
    )
    for returncode, records, output in resumed:
        assert returncode == 0, outputs
        assert records[0] == {"start_step": 2}, output[-3000:]
        assert records[-1]["end_step"] == 6  # 3 epochs of 2 steps, as planned
    assert_workers_identical(tmp_path)
    assert (tmp_path / "run" / "final.keras").exists()
