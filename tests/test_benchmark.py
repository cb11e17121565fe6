import importlib.util
from pathlib import Path

import pytest

from danet_keras import DANet
from danet_keras.benchmark import forward_latency
from danet_keras.cli.main import main


def test_forward_latency_reports_positive_times():
    model = DANet(3, backbone="resnet18", head_channels=16)
    result = forward_latency(model, (32, 48), batch_size=2, repeats=2)
    assert 0 < result["min_s"] <= result["median_s"]
    assert result["images_per_s"] == pytest.approx(2 / result["min_s"])
    assert result["peak_rss_mb"] > 0
    with pytest.raises(ValueError, match="repeats"):
        forward_latency(model, (32, 48), repeats=0)


def test_benchmark_command_prints_a_table(capsys):
    assert main(["benchmark", "--backbone", "resnet18", "--size", "32x32", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| resnet18 | 32x32 | 1 | False | float32 |" in out


def test_benchmark_command_refuses_a_bad_size(capsys):
    assert main(["benchmark", "--size", "512"]) == 2
    assert "512x1024" in capsys.readouterr().err


def load_benchmark(name):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_attention_memory_benchmark_quick_runs_every_path(capsys):
    # Five child processes (2 inference, 3 training paths), each importing TF.
    assert load_benchmark("attention_memory").main(["--quick"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 12x16")]
    assert len(rows) == 5
    assert sum("| training |" in row for row in rows) == 3
    assert "chunked, recomputed (now)" in rows[-1]
    for row in rows:
        assert "failed" not in row and "skipped" not in row, row
        peak_mb = float(row.split("|")[6])
        assert peak_mb > 0, row
