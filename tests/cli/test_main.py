import os
import re
import subprocess
import sys

import pytest

from danet_keras.cli.info import info_text, package_versions
from danet_keras.cli.main import main
from danet_keras.inference.optimize import winograd_choice
from danet_keras.utils.cpu import kernels_description


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "info" in capsys.readouterr().out


def test_info_reports_versions_devices_and_the_model_zoo(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "tensorflow",
        "keras",
        "devices:",
        "keras backend        tensorflow",
        "CPU",
        "danet_resnet101_cityscapes",
        "76.34",
    ):
        assert expected in out
    assert package_versions()["keras"].startswith("3.")
    # The machine and the inference graph's lever choice on it.
    assert f"cpu                  {kernels_description()}\n" in out
    assert f"inference graph      {winograd_choice()}\n" in out


def test_info_can_count_parameters(monkeypatch):
    from danet_keras.models import presets

    monkeypatch.setattr(
        presets,
        "PRESETS",
        {"danet_resnet50_cityscapes": presets.PRESETS["danet_resnet50_cityscapes"]},
    )
    assert "trainable parameters: 47,462,651" in info_text(count_parameters=True)


def test_unknown_command_is_refused_in_one_line(capsys):
    assert main(["frobnicate"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "invalid choice: 'frobnicate'" in lines[0]


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "danet_keras.cli.main", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("danet-keras ")


COMMANDS = ("info", "demo", "make-demo-data", "train", "evaluate", "benchmark", "export",
            "predict", "convert")  # fmt: skip


def test_help_does_not_import_tensorflow():
    # In a fresh interpreter: every command's --help, then a look at what got imported.
    code = (
        "import sys\n"
        "from danet_keras.cli.main import main\n"
        f"for command in ([], *[[c] for c in {COMMANDS!r}]):\n"
        "    try:\n"
        "        main(command + ['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'numpy', 'torch'))\n"
        "print('HEAVY', heavy[:5])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout[-500:]


def test_import_danet_keras_is_lazy():
    code = (
        "import sys, danet_keras\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "assert danet_keras.DANet.__name__ == 'DANet' and 'keras' in sys.modules\n"
        "assert callable(danet_keras.train) and callable(danet_keras.evaluate)\n"
        "assert set(danet_keras.__all__) <= set(dir(danet_keras)) | {'__version__'}\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_tensorflow_start_up_log_is_silenced_unless_asked_for():
    code = "from danet_keras.cli.main import main; main(['info'])"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr[-2000:]
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    plain = subprocess.run(
        [sys.executable, "-c", "import tensorflow as t; t.config.list_physical_devices()"],
        capture_output=True,
        text=True,
        env=env,
    )
    # The user's setting wins: TensorFlow's own start-up lines come through, as they do
    # for a plain `import tensorflow` (which lines depends on the machine).
    log_line = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)
    assert loud.returncode == 0
    assert len(log_line.findall(loud.stderr)) == len(log_line.findall(plain.stderr))
