import subprocess
import sys

import pytest

from danet_keras.cli.info import info_text, package_versions
from danet_keras.cli.main import build_parser, main


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
        "CPU",
        "danet_resnet101_cityscapes",
        "76.34",
    ):
        assert expected in out
    assert package_versions()["keras"].startswith("3.")


def test_info_can_count_parameters(monkeypatch):
    from danet_keras.models import presets

    monkeypatch.setattr(
        presets,
        "PRESETS",
        {"danet_resnet50_cityscapes": presets.PRESETS["danet_resnet50_cityscapes"]},
    )
    assert "trainable parameters: 47,462,651" in info_text(count_parameters=True)


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["frobnicate"])
    assert exit_info.value.code == 2


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "danet_keras.cli.main", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("danet-keras ")
