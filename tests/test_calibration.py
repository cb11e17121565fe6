import json
import os
import subprocess
import sys

import pytest

from danet_keras.inference import calibration

HEAD = dict(in_channels=2048, filters=512, kernel_size=(3, 3), strides=(1, 1), dilation_rate=(1, 1))
WHOLE, EIGHT_SLICES, TWO_BANDS = (1, 1), (8, 1), (1, 2)
# Medians (s) as measured on AVX-512 and with oneDNN capped at AVX2 (the module's table).
AVX512 = {WHOLE: 0.25, (2, 1): 0.20, (4, 1): 0.21, EIGHT_SLICES: 0.17, TWO_BANDS: 0.21}
AVX2 = {WHOLE: 0.58, (2, 1): 0.96, (4, 1): 1.45, EIGHT_SLICES: 2.31, TWO_BANDS: 0.36}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANET_KERAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / calibration.CACHE_NAME


@pytest.fixture
def timings(monkeypatch):
    """Replaces the timing with given medians; returns the list of shapes timed."""
    measured = []

    def install(times):
        def fake(*shape):
            measured.append(shape)
            return dict(times)

        monkeypatch.setattr(calibration, "time_candidates", fake)
        return measured

    return install


def test_choose_takes_the_fastest_only_with_a_clear_win():
    assert calibration.choose(AVX512) == EIGHT_SLICES
    assert calibration.choose(AVX2) == TWO_BANDS
    assert calibration.choose({WHOLE: 1.0, (2, 1): 0.95, (1, 2): 0.91}) == WHOLE  # the noise
    assert calibration.choose({WHOLE: 1.0, (2, 1): 1.5}) == WHOLE


def test_candidates_and_which_shapes_are_measured():
    assert calibration.candidates(512) == [WHOLE, (2, 1), (4, 1), EIGHT_SLICES, TWO_BANDS]
    assert calibration.candidates(96, strides=(2, 2)) == [WHOLE, (2, 1)]  # 48 filters a slice
    assert calibration.calibrated(**HEAD)
    assert not calibration.calibrated(**dict(HEAD, kernel_size=(1, 1)))  # 1x1: matmuls
    assert not calibration.calibrated(**dict(HEAD, in_channels=64))  # too little work
    assert not calibration.calibrated(**dict(HEAD, filters=40, strides=(2, 2)))  # no cut
    assert [calibration.label(c) for c in (WHOLE, EIGHT_SLICES, TWO_BANDS)] == [
        "whole",
        "8 slices",
        "2 bands",
    ]


def test_a_choice_is_measured_once_then_read_from_the_cache(cache, timings):
    measured = timings(AVX512)
    assert calibration.convolution_cut(**HEAD) == EIGHT_SLICES
    assert calibration.convolution_cut(**HEAD) == EIGHT_SLICES
    assert len(measured) == 1  # deterministic once made: no second timing
    entry = calibration.read_cache()[calibration.shape_key(*HEAD.values())]
    assert (entry["slices"], entry["bands"]) == EIGHT_SLICES
    assert entry["median_ms"]["8 slices"] == 170.0
    assert json.loads(cache.read_text())["format"] == calibration.CACHE_FORMAT
    # Another shape is measured on its own; a shape too small is never timed.
    timings({WHOLE: 0.05, (2, 1): 0.05, (4, 1): 0.06, EIGHT_SLICES: 0.06, TWO_BANDS: 0.05})
    assert calibration.convolution_cut(**dict(HEAD, in_channels=512)) == WHOLE
    assert calibration.convolution_cut(**dict(HEAD, in_channels=64)) == WHOLE
    assert len(calibration.read_cache()) == 2 and len(measured) == 2
    assert any("8 slices" in line for line in calibration.describe())


def test_another_machine_measures_again(cache, timings, monkeypatch):
    measured = timings(AVX512)
    calibration.convolution_cut(**HEAD)
    monkeypatch.setattr(calibration, "machine_key", lambda: "an AVX2 CPU")
    timings(AVX2)
    assert calibration.convolution_cut(**HEAD) == TWO_BANDS
    machines = json.loads(cache.read_text())["machines"]
    assert len(machines) == 2 and len(measured) == 2  # once per machine
    assert calibration.convolution_cut(**HEAD) == TWO_BANDS and len(measured) == 2


def test_a_file_it_did_not_write_is_kept(cache, timings, capsys):
    os.makedirs(cache.parent)
    cache.write_text("the user's notes\n")
    timings(AVX512)
    assert calibration.convolution_cut(**HEAD) == EIGHT_SLICES  # the choice holds here
    assert cache.read_text() == "the user's notes\n"
    assert "not cached" in capsys.readouterr().err


def test_processes_writing_at_once_keep_every_choice(cache):
    # Four processes (the workers of one server, say) each record 15 shapes at once: every
    # choice is kept, and none takes another's fresh, not yet recorded file for a foreign one.
    code = (
        "import sys\n"
        "from danet_keras.inference import calibration as c\n"
        "c.machine_key = lambda: 'a CPU'\n"
        "for i in range(15):\n"
        "    entry = {'slices': 1, 'bands': 1}\n"
        "    c._write_cache(f'{sys.argv[1]} {i}', entry, sys.argv[2], 512, (1, 1))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"writer {n}", str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert all(process.returncode == 0 for process in processes), errors
    assert not any("not cached" in error for error in errors), errors
    assert len(json.loads(cache.read_text())["machines"]["a CPU"]) == 60


def test_a_choice_recorded_meanwhile_by_another_process_holds(cache, monkeypatch):
    def timed_while_another_process_records(*shape):
        key = calibration.shape_key(*shape)
        calibration._write_cache(key, {"slices": 1, "bands": 2}, str(cache), 512, (1, 1))
        return dict(AVX512)  # this process alone would choose 8 slices

    monkeypatch.setattr(calibration, "time_candidates", timed_while_another_process_records)
    # The first recorded choice holds for every process, so their exports agree.
    assert calibration.convolution_cut(**HEAD) == TWO_BANDS
    entry = calibration.read_cache()[calibration.shape_key(*HEAD.values())]
    assert (entry["slices"], entry["bands"]) == TWO_BANDS


def test_a_process_waits_for_another_measuring_and_takes_its_choice(cache, timings, monkeypatch):
    monkeypatch.setattr(calibration, "machine_key", lambda: "a CPU")
    measured = timings(AVX512)
    key = calibration.shape_key(*HEAD.values())
    other = (
        "import sys, time\n"
        "from danet_keras.inference import calibration as c\n"
        "from danet_keras.utils.output_paths import locked\n"
        "c.machine_key = lambda: 'a CPU'\n"
        "with locked(sys.argv[1]):  # as while timing\n"
        "    print('measuring', flush=True)\n"
        "    time.sleep(2)\n"
        "    c._write_cache(sys.argv[2], {'slices': 1, 'bands': 2}, sys.argv[3], 512, (1, 1))\n"
    )
    os.makedirs(cache.parent)
    process = subprocess.Popen(
        [sys.executable, "-c", other, str(cache.parent), key, str(cache)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline() == "measuring\n"
        # Waits instead of timing beside it, then takes the other process's choice.
        assert calibration.convolution_cut(**HEAD) == TWO_BANDS and not measured
    finally:
        process.communicate(timeout=120)
    assert process.returncode == 0


def test_other_backends_and_describe_without_measurements(cache, timings, monkeypatch):
    measured = timings(AVX512)
    monkeypatch.setattr(calibration, "keras_backend", lambda: "jax")
    assert calibration.convolution_cut(**HEAD) == WHOLE and not measured
    assert "nothing measured" in calibration.describe()[0]


def test_timing_runs_every_candidate(monkeypatch):
    monkeypatch.setattr(calibration, "CALIBRATION_SIZE", (8, 8))
    monkeypatch.setattr(calibration, "ROUNDS", 1)
    times = calibration.time_candidates(16, 64, (3, 3), (1, 1), (2, 2))
    assert sorted(times) == [WHOLE, TWO_BANDS, (2, 1)] and all(t > 0 for t in times.values())


def test_timing_prints_nothing():
    # In a process of its own, as a user's console sees it: five functions traced in a row
    # once made TensorFlow warn about retracing (and the demo's stderr is kept empty).
    code = (
        "from danet_keras.inference import calibration as c\n"
        "c.CALIBRATION_SIZE, c.ROUNDS = (8, 8), 1\n"
        "assert len(c.time_candidates(16, 256, (3, 3), (1, 1), (1, 1))) == 5\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "retracing" not in result.stderr, result.stderr[-2000:]


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DANET_KERAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert calibration.cache_path() == str(tmp_path / "danet_keras" / calibration.CACHE_NAME)
    monkeypatch.setenv("DANET_KERAS_CACHE_DIR", str(tmp_path / "mine"))
    assert calibration.cache_path() == str(tmp_path / "mine" / calibration.CACHE_NAME)
