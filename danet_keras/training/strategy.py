"""Choosing a distribution strategy by name, and who the chief worker is.

Under TensorFlow a name is a `tf.distribute` strategy; under JAX, "auto" and
"data_parallel" are `keras.distribution.DataParallel` over the local devices;
under PyTorch, one device. A name that the running backend does not have is
refused (`make_strategy`).

Multi-worker training reads the cluster from the `TF_CONFIG` environment
variable as TensorFlow documents it, e.g. on worker 1 of two:

    {"cluster": {"worker": ["host0:12345", "host1:12345"]},
     "task": {"type": "worker", "index": 1}}

Every worker runs the same command; the chief (task "chief", or worker 0 when
the cluster has no "chief") writes checkpoints and logs.
"""

import contextlib
import json
import os

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu", "data_parallel")
# The names each Keras backend offers (TensorFlow's are tf.distribute strategies).
BACKEND_STRATEGIES = {
    "tensorflow": ("auto", "one_device", "mirrored", "multi_worker", "tpu"),
    "jax": ("auto", "one_device", "data_parallel"),
    "torch": ("auto", "one_device"),
}


def tf_config():
    """The parsed `TF_CONFIG` dict ({} when unset).

    Raises:
        ValueError: `TF_CONFIG` is not JSON with a "cluster" and a "task".
    """
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError('TF_CONFIG must be a JSON object with "cluster" and "task" entries.')
    task = config["task"]
    if task.get("type") not in config["cluster"] and task.get("type") != "evaluator":
        raise ValueError(f"TF_CONFIG task type {task.get('type')!r} is not in its cluster.")
    return config


def task_identity():
    """`(task_type, task_index)` of this process; `("worker", 0)` without `TF_CONFIG`."""
    task = tf_config().get("task", {})
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief():
    """Whether this process writes checkpoints and logs (always, without a cluster)."""
    config = tf_config()
    if not config:
        return True
    task_type, task_index = task_identity()
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and "chief" not in config["cluster"]


def _num_cluster_workers():
    cluster = tf_config().get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def _keras_multi_worker_strategy_class():
    # deferred: cli.train imports this module; `--help` loads no TensorFlow
    import tensorflow as tf

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose `reduce` accepts what Keras 3's `fit` passes it.

        Keras 3 (up to 3.15 at least, keras-team/keras#20585) calls
        `strategy.reduce` on the nested (images, labels) batch before training
        and with `axis=0` on the scalar metric values of every step; the
        collective strategy accepts neither. Reducing leaf by leaf, over
        replicas only for scalars, is what Keras means by both.
        """

        def reduce(self, reduce_op, value, axis=None):
            def reduce_leaf(leaf):
                local = (
                    self.experimental_local_results(leaf)[0]
                    if isinstance(leaf, tf.distribute.DistributedValues)
                    else leaf
                )
                leaf_axis = None if axis is not None and len(local.shape) == 0 else axis
                return super(KerasMultiWorkerMirroredStrategy, self).reduce(
                    reduce_op, leaf, axis=leaf_axis
                )

            return tf.nest.map_structure(reduce_leaf, value)

    return KerasMultiWorkerMirroredStrategy


class KerasDistribution:
    """What `train` uses of a `tf.distribute.Strategy`, for the JAX and PyTorch backends.

    Args:
        distribution: a `keras.distribution.Distribution` (JAX), or None for
            one device.
        device_type: `"cpu"`, `"gpu"` or `"tpu"`: where the model runs.
    """

    def __init__(self, distribution=None, device_type="cpu"):
        self.distribution = distribution
        self.device_type = device_type

    @property
    def num_replicas_in_sync(self):
        """Devices that each global batch is split over."""
        if self.distribution is None:
            return 1
        return int(self.distribution.device_mesh.devices.size)

    def scope(self):
        """Variables created and `fit` run under it follow the distribution."""
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()

    def distribute_datasets_from_function(self, dataset_fn):
        """The global dataset: Keras splits each batch over the devices itself."""
        return dataset_fn(None)


def check_strategy(name, backend):
    """Raises unless the Keras backend `backend` offers strategy `name`.

    Raises:
        ValueError: a one-line message naming the backend that has it.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {name!r}.")
    if name in BACKEND_STRATEGIES[backend]:
        return
    owners = [other for other, names in BACKEND_STRATEGIES.items() if name in names]
    raise ValueError(
        f"`strategy={name!r}` needs KERAS_BACKEND={owners[0]}; this process runs {backend}, "
        f"whose strategies are {BACKEND_STRATEGIES[backend]}."
    )


def _keras_distribution(name, devices, backend):
    """`make_strategy` under JAX and PyTorch."""
    # deferred: cli.train imports this module; `--help` loads no Keras backend
    import keras

    if backend == "torch":
        # deferred: only the PyTorch backend gets here
        import torch

        return KerasDistribution(None, "gpu" if torch.cuda.is_available() else "cpu")
    devices = list(devices or keras.distribution.list_devices())
    device_type = devices[0].split(":")[0]
    if name == "one_device" or (name == "auto" and len(devices) == 1):
        return KerasDistribution(None, device_type)
    return KerasDistribution(keras.distribution.DataParallel(devices=devices), device_type)


def make_strategy(name="auto", devices=None, tpu=None):
    """A distribution strategy by name, for the running Keras backend.

    Call it before building the model (and, for `"multi_worker"`, before any
    other TensorFlow work: the cluster is set up when it is created).

    Args:
        name: under TensorFlow, `"auto"` (multi-worker when `TF_CONFIG` lists
            several workers, TPU when `TPU_NAME` is set, mirrored over several
            GPUs, else one device), `"one_device"`, `"mirrored"` (all GPUs, or
            all logical CPUs when there is no GPU), `"multi_worker"` or
            `"tpu"`; under JAX, `"auto"` (data parallel over all local
            devices when there are several), `"one_device"` or
            `"data_parallel"`; under PyTorch, `"auto"` or `"one_device"`.
        devices: optional device list for `"mirrored"` / `"one_device"`
            (TensorFlow) or `"data_parallel"` (JAX, e.g. `["cpu:0", "cpu:1"]`).
        tpu: TPU name or address for `"tpu"` (default: `TPU_NAME`, or a
            local TPU VM).

    Returns:
        A `tf.distribute.Strategy` under TensorFlow, else a `KerasDistribution`.

    Raises:
        ValueError: unknown name, a name of another backend, or the requested
            hardware is not there.
    """
    # deferred: cli.train imports this module; `--help` loads no TensorFlow
    import keras

    backend = keras.backend.backend()
    check_strategy(name, backend)
    if backend != "tensorflow":
        if name == "auto" and _num_cluster_workers() > 1:
            raise ValueError(
                "TF_CONFIG lists several workers: multi-worker training needs "
                f"KERAS_BACKEND=tensorflow (this process runs {backend})."
            )
        return _keras_distribution(name, devices, backend)
    # deferred: cli.train imports this module; `--help` loads no TensorFlow
    import tensorflow as tf

    if name == "auto":
        if _num_cluster_workers() > 1:
            name = "multi_worker"
        elif os.environ.get("TPU_NAME") or tpu:
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one_device"

    if name == "multi_worker":
        tf_config()  # validate before TensorFlow tries to use it
        try:
            return _keras_multi_worker_strategy_class()()
        except RuntimeError as error:
            raise ValueError(
                "`strategy='multi_worker'` must be created before any other TensorFlow work "
                f"(datasets, models, tensors) in the process: {error}."
            ) from None
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=tpu or os.environ.get("TPU_NAME", "")
            )
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise ValueError(f"`strategy='tpu'`: no TPU could be reached ({error}).") from None
        return tf.distribute.TPUStrategy(resolver)

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "mirrored":
        if devices is None:
            devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=list(devices))
    device = devices[0] if devices else (gpus[0] if gpus else "/cpu:0")
    return tf.distribute.OneDeviceStrategy(device)


def configure_logical_cpus(count):
    """Splits the CPU into `count` logical devices, e.g. to try `"mirrored"` without GPUs.

    TensorFlow treats all CPU cores as one device; call this before any other
    TensorFlow work (it raises once the runtime has started).

    Args:
        count: number of logical CPU devices.
    """
    # deferred: cli.train imports this module; `--help` loads no TensorFlow
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(count)
    )
