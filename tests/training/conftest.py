"""Helpers for tests that need a fresh TensorFlow process (logical devices, TF_CONFIG, kills)."""

import os
import subprocess
import sys
import textwrap

import pytest


def python_process(code, env=None, **popen_kwargs):
    """Starts `python -c code` with quiet TensorFlow; returns the `Popen`."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen_kwargs,
    )


@pytest.fixture
def run_python():
    """Runs a Python snippet in a new process; fails the test with its output when it fails."""

    def run(code, env=None, timeout=300, expect_returncode=0):
        process = python_process(code, env)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            pytest.fail(f"subprocess timed out after {timeout}s:\n{output[-5000:]}")
        if expect_returncode is not None and process.returncode != expect_returncode:
            pytest.fail(f"subprocess exited with {process.returncode}:\n{output[-5000:]}")
        return output

    return run


@pytest.fixture
def start_python():
    """`python_process`: starts a snippet without waiting (for several processes at once)."""
    return python_process


# Learnable synthetic segmentation data for training tests: the class of a
# pixel is which of three colour channels is brightest, in 8x8 blocks.
SYNTHETIC_DATA = """
import numpy as np
import tensorflow as tf

def synthetic_segmentation(count, size=32, seed=0, batch_size=4):
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0, 255, (count, size // 8, size // 8, 3)).astype("float32")
    images = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)
    images += rng.normal(0, 10, images.shape).astype("float32")
    labels = images.argmax(-1).astype("int32")
    labels[:, :2, :2] = 255
    return tf.data.Dataset.from_tensor_slices((np.clip(images, 0, 255), labels)).batch(batch_size)
"""


@pytest.fixture
def synthetic_data_code():
    """Source defining `synthetic_segmentation(count, size, seed, batch_size)` for subprocesses."""
    return SYNTHETIC_DATA
