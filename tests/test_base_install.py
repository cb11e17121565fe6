"""The README's main job on a fresh virtual environment holding only `pip install -e .`."""

import os
import subprocess
import venv

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_base_install_runs_the_demo_with_nothing_but_its_own_lines(tmp_path):
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = str(environment / "bin" / "python")
    # The user's machine: no TF_CPP_MIN_LOG_LEVEL, none of the test run's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PYTHON", "VIRTUAL"))}
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-e", REPOSITORY],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, env=env
    ).stdout.lower()
    assert "torch==" not in listed and "keras-cv==" not in listed  # extras stay out
    demo = subprocess.run(
        [str(environment / "bin" / "danet-keras"), "demo", "--quick", "--output", "out"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert demo.returncode == 0, (demo.stdout[-2000:], demo.stderr[-3000:])
    assert "[demo] validation mIoU" in demo.stdout
    # No TensorFlow log, deprecation warning or other library noise: stderr is empty.
    assert demo.stderr == "", demo.stderr[-3000:]
