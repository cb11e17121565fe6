import importlib.util
from pathlib import Path

import numpy as np
import pytest

from danet_keras import DANet
from danet_keras.apps.benchmark import (
    LEVERS,
    agreement,
    benchmark_images,
    forward_latency,
    model_flops,
    run_case,
    run_case_in_child,
)
from danet_keras.cli.main import main
from danet_keras.utils.cpu import kernels_description

from .numerics import BFLOAT16_KERNELS_CAPPED_AWAY


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
    assert main(["benchmark", "--size", "512x"]) == 2
    assert "a size is N or HEIGHTxWIDTH, e.g. 512 or 512x1024" in capsys.readouterr().err


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


def tiny_case(**overrides):
    case = dict(
        backbone="resnet18",
        num_classes=3,
        head_channels=8,
        size=[32, 48],
        batch=1,
        precision="float32",
        warmup=1,
        repeats=1,
    )
    return dict(case, **overrides)


def test_model_flops_match_the_formula_of_a_conv():
    import keras

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, strides=2)(outputs))
    expected = 2 * 10 * 12 * 9 * 3 * 4 + 2 * 5 * 6 * 4 * 2
    assert model_flops(model, (10, 12)) == expected


def test_danet_resnet50_flops_at_512_are_the_known_419_gflop():
    # DESIGN.md section 4: ~419 GFLOP for DANet-ResNet50, 19 classes, OS 8, 512x512.
    flops = model_flops(DANet(19, backbone="resnet50"), (512, 512))
    assert 4.1e11 < flops < 4.3e11


def test_benchmark_images_are_smooth_uint8_and_deterministic():
    images = benchmark_images(2, (40, 56), seed=3)
    assert images.shape == (2, 40, 56, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, benchmark_images(2, (40, 56), seed=3))
    assert np.abs(np.diff(images.astype(int), axis=1)).mean() < 20  # regions, not noise


def test_cases_run_in_process(tmp_path):
    # Each task once, tiny, in this process (the children run the same function).
    import keras

    torch = pytest.importorskip("torch")  # noqa: F841
    weights = str(tmp_path / "w.npz")
    assert run_case(tiny_case(task="weights", side="torch", weights=weights))["path"] == weights
    logits = {}
    for side in ("torch", "keras"):
        logits[side] = str(tmp_path / f"{side}.npy")
        case = tiny_case(task="inference", side=side, weights=weights, logits_path=logits[side])
        result = run_case(dict(case, variant="optimized", count_flops=True))
        assert result["median_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["flops"] > 0
    difference, agree = agreement(logits["keras"], logits["torch"])
    # Converted weights: within the conversion tolerance (convert.verify).
    assert difference < 1e-3 and agree > 0.99
    if not BFLOAT16_KERNELS_CAPPED_AWAY:  # see tests/numerics.py
        try:
            bf16 = run_case(tiny_case(task="inference", side="keras", precision="bfloat16"))
        finally:
            keras.mixed_precision.set_global_policy("float32")
        assert bf16["median_s"] > 0
    for side in ("torch", "keras", "backend"):
        assert run_case(tiny_case(task="training", side=side, batch=2))["median_s"] > 0
    assert run_case(tiny_case(task="inference", side="backend"))["backend"] == "tensorflow"
    levers = run_case(tiny_case(task="levers", side="keras"))["levers"]
    assert levers["plain"]["ratio"] == 1.0 and len(levers) == len(LEVERS)
    serving = run_case(tiny_case(task="serving", side="keras", weights=weights))
    assert serving["bare_median_s"] > 0 and serving["overhead"] > -1


@pytest.mark.slow
def test_tflite_int8_cases_run_in_process(tmp_path):
    path = str(tmp_path / "m.tflite")
    case = tiny_case(precision="int8", tflite_path=path, calibration_images=2)
    assert run_case(dict(case, task="export", side="tflite"))["export_s"] > 0
    result = run_case(dict(case, task="inference", side="tflite"))
    assert result["median_s"] > 0


@pytest.mark.slow
def test_vs_pytorch_smoke_runs_children_and_writes_table_and_plot(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "results"
    arguments = ["--smoke", "--parts", "inference", "training", "--output", str(out)]
    assert load_benchmark("vs_pytorch").main(arguments) == 0
    table = (out / "vs_pytorch.md").read_text()
    assert table.startswith(f"CPU: {kernels_description()}\n")  # the figures' machine
    for label in ("PyTorch fp32", "Keras plain", "Keras optimized", "Keras naive", "| training |"):
        assert label in table, label
    assert "**" not in table  # no failed case
    # Without bfloat16 rows the run does not touch bfloat16 kernels, not even for the peak.
    assert "GFLOP/s fp32 |" in table and " bf16 |" not in table
    assert (out / "vs_pytorch.png").stat().st_size > 0


@pytest.mark.slow
def test_backends_benchmark_runs_each_backend_in_its_child(capsys):
    # One backend other than this process's: the child's KERAS_BACKEND is the case's.
    arguments = ["--backends", "jax", "--sizes", "32x32", "--backbone", "resnet18"]
    load_benchmark("backends").main(arguments + ["--head-channels", "16", "--repeats", "1"])
    table = capsys.readouterr().out
    assert table.startswith(f"CPU: {kernels_description()}\n")
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| inference") or line.startswith("| training")
    ]
    assert [row.split(" | ")[0] for row in rows] == [
        "| inference 32x32, batch 1",
        "| training 32x32, batch 2",
    ]
    for row in rows:  # "seconds s / peak GB": no error, no other backend
        assert row.split(" | ")[1].endswith(" GB |"), row


def test_child_process_reports_errors_and_memory_limits():
    failed = run_case_in_child({"task": "inference", "side": "nowhere"})
    assert "KeyError" in failed["error"]
    stopped = run_case_in_child(tiny_case(task="inference", side="keras"), max_rss_gb=0.05)
    assert stopped["error"].startswith("out of memory")


@pytest.mark.slow
def test_benchmark_command_compares_with_pytorch(capsys):
    pytest.importorskip("torch")
    arguments = ["benchmark", "--compare-pytorch", "--backbone", "resnet18", "--size", "32x32"]
    assert main(arguments + ["--repeats", "1", "--num-classes", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| Keras")]
    assert [row.split(" | ")[0] for row in rows] == ["| Keras plain", "| Keras optimized"]
    for row in rows:
        difference = float(row.split(" | ")[4].split(" / ")[0])
        assert difference < 1e-3, row  # the conversion tolerance (convert.verify)


def test_response_size_counts_the_json_that_tf_serving_writes():
    import json

    sizes = load_benchmark("response_size")
    assert [sizes.format_number(v) for v in (0.1, 1 / 3, 1.0, 1e-5, 1e5, 1e6, -2.5)] == [
        "0.1", "0.333333343", "1.0", "1e-05", "100000.0", "1e+06", "-2.5",
    ]  # fmt: skip
    assert sizes.format_number(np.int32(17)) == "17"
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (1, 6, 5, 3)).astype(np.float32)
    logits[0, 0, 0] = [2.0, 1e-5, 123456.0]  # whole, tiny and large numbers
    outputs = {
        "class_ids": logits.argmax(-1).astype(np.int32) * 7,  # one and two digits
        "logits": logits,
        "probabilities": rng.dirichlet(np.ones(3), (1, 6, 5)).astype(np.float32),
    }
    for names in sizes.ROWS:
        chosen = {name: outputs[name] for name in names}
        text = sizes.rest_response_text(chosen)
        parsed = json.loads(text)["predictions"][0]
        if len(names) == 1:
            np.testing.assert_array_equal(parsed, outputs["class_ids"][0])
        else:
            assert sorted(parsed) == sorted(names)
            # The floats read back exactly (9 significant digits where 6 do not).
            for name in names[1:]:
                np.testing.assert_array_equal(np.float32(parsed[name]), outputs[name][0])
        # The vectorised count is the length of the written text.
        assert sizes.rest_response_size(chosen) == len(text)


def test_conv_cuts_times_every_cut_per_size_and_reports_a_size_that_runs_out_of_time(capsys):
    conv_cuts = load_benchmark("conv_cuts")
    small = ["--channels", "16", "64", "--sizes", "8x8", "6x10", "--rounds", "1"]
    conv_cuts.main(small)
    table = capsys.readouterr().out
    assert table.startswith(f"CPU: {kernels_description()}\n")
    assert "| map | whole | 2 slices | 2 bands |" in table
    rows = [line for line in table.splitlines() if line.startswith(("| 8x8", "| 6x10"))]
    assert len(rows) == 2 and all(row.count("x)") == 2 for row in rows), rows
    conv_cuts.main(small[:5] + ["--timeout", "0.01"])
    assert "| 8x8 | did not finish in 0 s |" in capsys.readouterr().out
