"""Shared test set-up: quiet TensorFlow, deterministic seeds, two workers that stay small."""

import atexit
import ctypes
import ctypes.util
import gc
import os
import shutil
import subprocess
import tempfile
import venv

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Read by glibc when a process starts, so it reaches the pytest-xdist workers (started after
# this file is imported) and the tests' subprocesses: two malloc arenas instead of one per
# thread, which otherwise hold gigabytes that TensorFlow freed long ago.
os.environ.setdefault("MALLOC_ARENA_MAX", "2")
# What danet_keras caches (file checks, measured lever choices) goes to a folder of this run,
# never the user's; the xdist workers and the tests' subprocesses inherit it.
if "DANET_KERAS_TEST_CACHE" not in os.environ:
    os.environ["DANET_KERAS_TEST_CACHE"] = os.environ["DANET_KERAS_CACHE_DIR"] = tempfile.mkdtemp(
        prefix="danet_keras_test_cache_"
    )
    atexit.register(shutil.rmtree, os.environ["DANET_KERAS_CACHE_DIR"], True)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


@pytest.fixture(autouse=True, scope="module")
def _release_memory():
    """After each test file, gives the memory it freed back to the system.

    A file's models and exports are garbage once its module fixtures are gone, but
    glibc keeps the freed pages; two workers that keep them all would outgrow the
    machine (measured: a worker fell from 6.2 to 3.5 GB after the ONNX tests).
    """
    yield
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):  # glibc only
        _LIBC.malloc_trim(0)


# The suite runs in two workers (setup.cfg), a group of test files each at a time: a file's
# module fixtures are built once, and files that share an expensive session fixture (or a
# cached trained model) run in the same worker, so it is built once too.
SHARED_FIXTURES = ("quick_demo", "base_install", "default_export_dir", "default_export")
SHARED_BUILDERS = ("small_trained_danet",)  # cached functions, found in a file's source


def _shared_work(item):
    used = {name for name in SHARED_FIXTURES if name in item.fixturenames}
    source = item.path.read_text() if item.path.suffix == ".py" else ""
    return used | {name for name in SHARED_BUILDERS if name in source}


# A wrapper: the groups must be marked before pytest-xdist's own hook reads them.
@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    files = {}  # file -> the shared work its tests use
    for item in items:
        files.setdefault(str(item.path), set()).update(_shared_work(item))
    group = {path: path for path in files}  # union of files sharing work

    def root(path):
        while group[path] != path:
            path = group[path]
        return path

    owners = {}
    for path, shared in sorted(files.items()):
        for work in shared:
            if work in owners:
                group[root(path)] = root(owners[work])
            else:
                owners[work] = path
    for item in items:
        name = os.path.relpath(root(str(item.path)), REPOSITORY)
        item.add_marker(pytest.mark.xdist_group(name))
    return (yield)


REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def base_install(tmp_path_factory):
    """A fresh virtual environment holding only `pip install -e .`: (its bin folder, the env).

    The environment is a user's: none of the test run's `TF_*` or Python settings.
    """
    root = tmp_path_factory.mktemp("base_install")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PYTHON", "VIRTUAL"))}
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-e", REPOSITORY],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return bin_dir, env


@pytest.fixture(scope="session")
def quick_demo(base_install, tmp_path_factory):
    """`danet-keras demo --quick`, run once as a user would: (output dir, the process).

    It runs in the base install (`base_install`), from the README's command, so
    the one demo run also shows that the base install needs nothing more. Its
    best model was trained with `danet_keras.train` on the demo city
    (Cityscapes classes), so tests of what a trained model carries use it too.
    """
    bin_dir, env = base_install
    cwd = tmp_path_factory.mktemp("quick_demo")
    process = subprocess.run(
        [str(bin_dir / "danet-keras"), "demo", "--quick", "--output", "demo"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=900,
    )  # fmt: skip
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return cwd / "demo", process


@pytest.fixture(scope="session")
def attention_danet():
    """The export tests' small DANet (5 classes, both attentions non-trivial), built once."""
    from .export.conftest import build_small_danet

    return build_small_danet()


@pytest.fixture(scope="session")
def attention_image():
    """One smooth RGB image of the small DANet's test size (64x96)."""
    from danet_keras.export import synthetic_images

    from .export.conftest import IMAGE_SIZE

    return synthetic_images(1, IMAGE_SIZE, seed=3)[0]
