"""Atomic, durable writes, and the clearing of what dead writers left (`utils.atomic_io`)."""

import os
import socket
import subprocess
import sys

import pytest

from danet_keras.utils import atomic_io
from danet_keras.utils.atomic_io import (
    atomic_directory,
    is_partial,
    partial_name,
    remove_dead_partials_of,
    remove_partials,
    write_text,
)


@pytest.fixture
def events(monkeypatch):
    """The order of fsyncs and renames, as ("fsync", path) and ("replace", source, destination)."""
    log = []
    real_fsync, real_replace = os.fsync, os.replace
    paths = {}
    real_open = os.open

    def tracked_open(path, flags, *args, **kwargs):
        descriptor = real_open(path, flags, *args, **kwargs)
        paths[descriptor] = os.path.abspath(path)
        return descriptor

    def fsync(descriptor):
        log.append(("fsync", paths.get(descriptor)))
        return real_fsync(descriptor)

    def replace(source, destination):
        log.append(("replace", os.path.abspath(source), os.path.abspath(destination)))
        return real_replace(source, destination)

    monkeypatch.setattr(os, "open", tracked_open)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def test_a_file_is_on_the_disk_before_its_rename_and_the_rename_before_return(tmp_path, events):
    path = tmp_path / "a.json"
    write_text(path, "{}")
    (replace,) = [e for e in events if e[0] == "replace"]
    temporary = replace[1]
    assert events.index(("fsync", temporary)) < events.index(replace)
    assert events[-1] == ("fsync", str(tmp_path))  # the directory entry, last
    assert path.read_text() == "{}"


def test_a_directory_is_on_the_disk_whole_before_it_replaces_the_old_one(tmp_path, events):
    path = tmp_path / "state"
    path.mkdir()
    (path / "old").write_text("old")
    with atomic_directory(path) as staging:
        os.makedirs(os.path.join(staging, "variables"))
        with open(os.path.join(staging, "variables", "data"), "w") as f:
            f.write("new")
    final = [e for e in events if e[0] == "replace" and e[2] == str(path)][0]
    staged = final[1]
    before = events[: events.index(final)]
    for inner in (os.path.join(staged, "variables", "data"), os.path.join(staged, "variables")):
        assert ("fsync", inner) in before
    assert ("fsync", str(tmp_path)) in events[events.index(final) :]
    assert sorted(os.listdir(tmp_path)) == ["state"]  # the old one is gone, nothing partial
    assert (path / "variables" / "data").read_text() == "new"


def test_partial_names_carry_the_host_and_process(tmp_path):
    name = os.path.basename(partial_name(tmp_path / "model.weights.h5"))
    assert is_partial(name) and name.endswith(".partial.weights.h5")
    assert f"-{os.getpid()}-" in name
    assert atomic_io.left_by_dead_writer(name)  # this process's own


def _partial_of(path, pid, host=None):
    name = os.path.basename(partial_name(path))
    name = name.replace(f"-{os.getpid()}-", f"-{pid}-")
    if host is not None:
        name = name.replace(atomic_io._host_token(), host)
    return os.path.join(os.path.dirname(path), name)


def test_only_partials_of_dead_writers_on_this_host_are_removed(tmp_path):
    # A process that is gone, and one that still runs.
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                              capture_output=True, check=True)  # fmt: skip
    dead_pid = int(finished.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _partial_of(tmp_path / "best.keras", dead_pid)
        running = _partial_of(tmp_path / "best.keras", live.pid)
        elsewhere = _partial_of(tmp_path / "best.keras", dead_pid, host="0badc0de")
        # A name of the old format (no host, no process) proves nothing either.
        old_format = tmp_path / ".best.1234abcd.partial.keras"
        nested = tmp_path / "other_run"
        nested.mkdir()
        nested_dead = _partial_of(nested / "final.keras", dead_pid)
        for path in (dead, running, elsewhere, old_format, nested_dead):
            with open(path, "w") as f:
                f.write("half")
        assert socket.gethostname()  # the host token is of a real name
        removed = remove_partials(tmp_path, skip=lambda folder: folder == str(nested))
        assert removed == [dead]
        assert all(os.path.exists(p) for p in (running, elsewhere, old_format, nested_dead))
        assert remove_dead_partials_of(nested / "final.keras") == [nested_dead]
        assert remove_dead_partials_of(tmp_path / "other.keras") == []
    finally:
        live.kill()
        live.wait()
