"""Latency, memory and throughput of DANet, on its own and against the PyTorch reference.

`forward_latency` times a model in this process (the quick local check of
`danet-keras benchmark`). For side-by-side figures each configuration runs
in its own process, so that its peak RSS is its own: a *case* (a dict, see
`run_case`) names one side (`"keras"`, `"tflite"` or `"torch"`: the project's
PyTorch reference DANet, `convert.torch_reference`, holding the same weights),
one precision and one task (inference, a training step, the SavedModel
serving path, ...), and `run_case_in_child` runs it in a child process under
a memory limit. `benchmarks/vs_pytorch.py` builds its tables from these, and
`danet-keras benchmark --compare-pytorch` runs `compare_inference`.

One module per job:

    measure.py    peak RSS, timing, `forward_latency`, `model_flops`,
                  `matmul_peak_gflops`, `benchmark_images`
    cases.py      the per-process cases (`CASE_RUNNERS`) and `run_case`
    child.py      `run_case_in_child` (a `python -m danet_keras.apps.benchmark`
                  child, `__main__.py`), `agreement`, `compare_inference`

TensorFlow, Keras, PyTorch, LiteRT and the package's own model code are
imported inside the functions that use them: a case's child process loads
only its own side's framework, so that its peak RSS is its own.
"""

from danet_keras.apps.benchmark.cases import (
    CASE_RUNNERS,
    KERAS_VARIANTS,
    LEVERS,
    LOGIT_STRIDE,
    NAIVE_ATTENTION_BLOCK,
    TRAINING_OUTPUTS,
    keras_training_step,
    run_case,
)
from danet_keras.apps.benchmark.child import (
    DEFAULT_MAX_RSS_GB,
    RESULT_PREFIX,
    agreement,
    compare_inference,
    run_case_in_child,
)
from danet_keras.apps.benchmark.measure import (
    benchmark_images,
    forward_latency,
    matmul_peak_gflops,
    model_flops,
    peak_rss_mb,
)

__all__ = [
    "CASE_RUNNERS",
    "DEFAULT_MAX_RSS_GB",
    "KERAS_VARIANTS",
    "LEVERS",
    "LOGIT_STRIDE",
    "NAIVE_ATTENTION_BLOCK",
    "RESULT_PREFIX",
    "TRAINING_OUTPUTS",
    "agreement",
    "benchmark_images",
    "compare_inference",
    "forward_latency",
    "keras_training_step",
    "matmul_peak_gflops",
    "model_flops",
    "peak_rss_mb",
    "run_case",
    "run_case_in_child",
]
