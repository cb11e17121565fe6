import json
import os

import pytest

from danet_keras.inference import calibration

HEAD = dict(in_channels=2048, filters=512, kernel_size=(3, 3), strides=(1, 1), dilation_rate=(1, 1))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANET_KERAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / calibration.CACHE_NAME


@pytest.fixture
def timings(monkeypatch):
    """Replaces the timing with given medians, and counts the measurements."""
    measured = []

    def install(times):
        def fake(*shape):
            measured.append(shape)
            return dict(times)

        monkeypatch.setattr(calibration, "time_candidates", fake)
        return measured

    return install


def test_choose_takes_the_fastest_only_with_a_clear_win():
    assert calibration.choose({1: 1.0, 2: 0.95, 4: 0.70, 8: 0.72}) == 4
    assert calibration.choose({1: 1.0, 2: 0.95, 4: 0.91, 8: 0.93}) == 1  # within the noise
    assert calibration.choose({1: 1.0, 2: 1.5}) == 1


def test_candidates_and_which_shapes_are_measured():
    assert calibration.candidates(512) == [1, 2, 4, 8]
    assert calibration.candidates(96) == [1, 2]  # 48 filters a slice at least 32
    assert calibration.calibrated(**HEAD)
    assert not calibration.calibrated(**dict(HEAD, kernel_size=(1, 1)))  # 1x1: matmuls
    assert not calibration.calibrated(**dict(HEAD, in_channels=64))  # too little work
    assert not calibration.calibrated(**dict(HEAD, filters=40))  # no slice of 32 filters


def test_a_choice_is_measured_once_then_read_from_the_cache(cache, timings):
    measured = timings({1: 0.25, 2: 0.23, 4: 0.22, 8: 0.18})
    assert calibration.filter_slices(**HEAD) == 8
    assert calibration.filter_slices(**HEAD) == 8
    assert len(measured) == 1  # deterministic once made: no second timing
    entries = calibration.read_cache()
    assert entries[calibration.shape_key(*HEAD.values())]["slices"] == 8
    assert json.loads(cache.read_text())["format"] == calibration.CACHE_FORMAT
    # Another shape is measured on its own; a shape too small is never timed.
    timings({1: 0.05, 2: 0.05, 4: 0.06, 8: 0.06})
    assert calibration.filter_slices(**dict(HEAD, in_channels=512)) == 1
    assert calibration.filter_slices(**dict(HEAD, in_channels=64)) == 1
    assert len(calibration.read_cache()) == 2
    assert any("8 slice(s)" in line for line in calibration.describe())


def test_another_machine_measures_again(cache, timings, monkeypatch):
    measured = timings({1: 0.25, 2: 0.23, 4: 0.22, 8: 0.18})
    calibration.filter_slices(**HEAD)
    monkeypatch.setattr(calibration, "machine_key", lambda: "an AVX2 CPU")
    timings({1: 0.5, 2: 1.0, 4: 1.5, 8: 2.0})
    assert calibration.filter_slices(**HEAD) == 1
    machines = json.loads(cache.read_text())["machines"]
    assert len(machines) == 2 and len(measured) == 2  # once per machine
    assert calibration.filter_slices(**HEAD) == 1 and len(measured) == 2


def test_a_file_it_did_not_write_is_kept(cache, timings, capsys):
    os.makedirs(cache.parent)
    cache.write_text("the user's notes\n")
    timings({1: 0.25, 2: 0.23, 4: 0.22, 8: 0.18})
    assert calibration.filter_slices(**HEAD) == 8  # the choice holds in this process
    assert cache.read_text() == "the user's notes\n"
    assert "not cached" in capsys.readouterr().err


def test_other_backends_and_describe_without_measurements(cache, timings, monkeypatch):
    measured = timings({1: 1.0, 8: 0.1})
    monkeypatch.setattr(calibration, "keras_backend", lambda: "jax")
    assert calibration.filter_slices(**HEAD) == 1 and not measured
    assert "nothing measured" in calibration.describe()[0]


def test_timing_runs_every_candidate(monkeypatch):
    monkeypatch.setattr(calibration, "CALIBRATION_SIZE", (8, 8))
    monkeypatch.setattr(calibration, "ROUNDS", 1)
    times = calibration.time_candidates(16, 64, (3, 3), (1, 1), (2, 2))
    assert sorted(times) == [1, 2] and all(t > 0 for t in times.values())


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DANET_KERAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert calibration.cache_path() == str(tmp_path / "danet_keras" / calibration.CACHE_NAME)
    monkeypatch.setenv("DANET_KERAS_CACHE_DIR", str(tmp_path / "mine"))
    assert calibration.cache_path() == str(tmp_path / "mine" / calibration.CACHE_NAME)
