"""The README's main job on a fresh virtual environment holding only `pip install -e .`."""

import subprocess

import pytest


@pytest.mark.slow
def test_base_install_runs_the_demo_with_nothing_but_its_own_lines(base_install, quick_demo):
    bin_dir, env = base_install
    listed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, env=env,
    ).stdout.lower()  # fmt: skip
    assert "torch==" not in listed and "keras-cv==" not in listed  # extras stay out
    _, demo = quick_demo  # `danet-keras demo --quick` in that environment
    assert "[demo] validation mIoU" in demo.stdout
    # No TensorFlow log, deprecation warning or other library noise: stderr is empty.
    assert demo.stderr == "", demo.stderr[-3000:]
