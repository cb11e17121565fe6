import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--backbone", "resnet18", "--size", "64x96"])
    try:
        runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    except SystemExit as exit_info:
        assert exit_info.code == 0
    out = capsys.readouterr().out
    assert "logits: (1, 64, 96, 19)" in out
    assert "position attention map (B, h, w, h, w): (1, 8, 12, 8, 12)" in out
    assert "identical outputs = True" in out
