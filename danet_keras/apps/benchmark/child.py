"""Running a benchmark case in a child process, and Keras against PyTorch for one configuration.

`run_case_in_child` starts `python -m danet_keras.apps.benchmark CASE_JSON`
(`__main__.py`), which runs `cases.run_case` and prints its figures after
`RESULT_PREFIX`; the parent watches the child's memory and time.
`compare_inference` is `danet-keras benchmark --compare-pytorch`.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

RESULT_PREFIX = "BENCHMARK_RESULT "
DEFAULT_MAX_RSS_GB = 16.0


def _rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def run_case_in_child(case, timeout_s=3600, max_rss_gb=DEFAULT_MAX_RSS_GB):
    """Runs `run_case(case)` in a fresh Python process and returns its figures.

    The child is stopped when its resident memory passes `max_rss_gb` (so a
    case that would need more never reaches the system's OOM killer) or when
    it runs longer than `timeout_s`.

    Returns:
        The child's dict, or `{"error": ...}`: `"out of memory: ..."` when
        it passed the limit or failed to allocate, a timeout, or the last
        line of its error output.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if case.get("backend"):
        # Read when Keras is imported: the child's backend is the case's.
        env["KERAS_BACKEND"] = case["backend"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "danet_keras.apps.benchmark", json.dumps(case)],
            stdout=out,
            stderr=err,
            env=env,
        )
        start, stopped = time.monotonic(), None
        while process.poll() is None:
            if _rss_mb(process.pid) > 1024 * max_rss_gb:
                stopped = f"out of memory: passed {max_rss_gb:g} GB RSS, stopped"
            elif time.monotonic() - start > timeout_s:
                stopped = f"timeout after {timeout_s:.0f} s"
            if stopped:
                process.kill()
                process.wait()
                return {"error": stopped}
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith(RESULT_PREFIX)]
        if process.returncode == 0 and lines:
            return json.loads(lines[-1][len(RESULT_PREFIX) :])
        errors = [line for line in err.read().splitlines() if line.strip()]
        reason = errors[-1][:160] if errors else "no output"
        if process.returncode < 0:
            reason = f"killed by signal {-process.returncode} ({reason})"
        return {"error": reason}


# === Keras against PyTorch, one configuration ===
def agreement(actual_path, reference_path):
    """(max |difference| / logit range, argmax agreement) of two saved logit arrays."""
    actual, reference = np.load(actual_path), np.load(reference_path)
    relative = float(np.max(np.abs(actual - reference)) / np.ptp(reference))
    return relative, float(np.mean(actual.argmax(-1) == reference.argmax(-1)))


def compare_inference(
    backbone="resnet50",
    size=(512, 512),
    batch=1,
    precision="float32",
    num_classes=19,
    output_stride=8,
    repeats=3,
    variants=("plain", "optimized"),
    work_dir=None,
    max_rss_gb=DEFAULT_MAX_RSS_GB,
):
    """Forward latency and memory of Keras variants against the PyTorch reference.

    Each side runs in its own process with the same converted weights (the
    reference's, with trained-like BatchNorm statistics) on the same images;
    each Keras variant's logits are checked against the reference's.

    Args:
        backbone, size, batch, precision, num_classes, output_stride: the
            configuration (`precision`: `"float32"` or `"bfloat16"`,
            PyTorch under `torch.autocast`).
        repeats: timed calls after one warm-up.
        variants: Keras variants (see `run_case`).
        work_dir: where weights and logits go (default: a temporary dir).
        max_rss_gb: memory limit of each child.

    Returns:
        A list of row dicts: `side`, `variant`, `median_s`, `peak_rss_mb`,
        `ratio` (to PyTorch), `relative_logit_diff`, `agreement` (or `error`).
    """
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="danet_compare_"))
        base = dict(
            backbone=backbone,
            num_classes=num_classes,
            output_stride=output_stride,
            size=list(size),
            batch=batch,
            precision=precision,
            repeats=repeats,
        )
        weights = os.path.join(work_dir, f"{backbone}_{num_classes}_os{output_stride}.npz")
        if not os.path.exists(weights):
            made = run_case_in_child(dict(base, task="weights", side="torch", weights=weights))
            if "error" in made:
                raise RuntimeError(f"could not build the PyTorch reference: {made['error']}")
        rows = []
        cases = [("torch", "official")] + [("keras", v) for v in variants]
        for side, variant in cases:
            logits = os.path.join(work_dir, f"logits_{side}_{variant}.npy")
            case = dict(
                base,
                task="inference",
                side=side,
                variant=variant,
                weights=weights,
                logits_path=logits,
            )
            result = run_case_in_child(case, max_rss_gb=max_rss_gb)
            row = {"side": side, "variant": variant, **result}
            if "error" not in result and side == "keras" and "error" not in rows[0]:
                row["ratio"] = result["median_s"] / rows[0]["median_s"]
                row["relative_logit_diff"], row["agreement"] = agreement(
                    logits, os.path.join(work_dir, "logits_torch_official.npy")
                )
            rows.append(row)
        return rows
