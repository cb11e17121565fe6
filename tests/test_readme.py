"""The README's commands and code stay true: they parse, and the quickstart runs.

The quickstart (demo, your own photo, `model.fit`, serving) runs here with tiny
settings: the demo is the session's `danet-keras demo --quick` (`quick_demo` in
conftest.py), whose folder stands in for `danet_demo`, and the REST examples talk to
the exported SavedModel through a stand-in for TF Serving's REST API.
"""

import base64
import importlib.util
import json as json_module
import re
import shlex
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from danet_keras.cli.deprecated import upgrade_arguments
from danet_keras.cli.main import build_parser, main

from .numerics import assert_classes_agree

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# The README's promise: the two set-up commands.
DEMO_COMMAND = "pip install -e . && danet-keras demo"
TEST_COMMAND = (
    'pip install torch==2.13.0 && pip install -e ".[test,torch,tflite,onnx]" && python -m pytest'
)


def code_blocks(path, language):
    """The fenced code blocks of one language in a Markdown file."""
    text = Path(path).read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def shell_commands(path):
    """Each command of the file's bash blocks: continued lines joined, `&&` chains split."""
    commands = []
    for block in code_blocks(path, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def danet_keras_arguments(path):
    """The arguments of every `danet-keras` command of the file (comments and [options] out)."""
    found = []
    for command in shell_commands(path):
        command = re.sub(r"^(\w+=\S* )+", "", command)  # "KERAS_BACKEND=jax danet-keras ..."
        if command.startswith("danet-keras "):
            command = re.sub(r"\[[^\]]*\]", "", command)  # "[--optional ...]" in the docs
            found.append(shlex.split(command, comments=True)[1:])
    return found


def readme_command(*words):
    """The README's one `danet-keras` command that starts with these words."""
    matches = [a for a in danet_keras_arguments(README) if a[: len(words)] == list(words)]
    assert len(matches) == 1, (words, matches)
    return matches[0]


def test_the_two_set_up_commands_are_the_readmes_and_ci_runs_the_test_command():
    blocks = [block.strip() for block in code_blocks(README, "bash")]
    assert DEMO_COMMAND in blocks and TEST_COMMAND in blocks
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert TEST_COMMAND in ci  # verbatim, as a line of its own


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda path: path.name)
def test_every_command_parses_in_todays_spelling(path):
    parser = build_parser()
    for arguments in danet_keras_arguments(path):
        assert upgrade_arguments(arguments) == arguments, f"an old spelling: {arguments}"
        try:
            parser.parse_args(arguments)
        except ValueError as error:  # cli.main.UsageError
            raise AssertionError(f"{path.name}: danet-keras {shlex.join(arguments)}: {error}")


def test_the_readme_links_its_reference_pages():
    text = README.read_text()
    for page in DOCS:
        assert f"(docs/{page.name})" in text, page.name
    for link in re.findall(r"\]\(((?:docs/|examples/|CONTRIBUTING|CITATION|LICENSE)[^)#]*)", text):
        assert (ROOT / link).exists(), link
    for page in DOCS:
        for link in re.findall(r"\]\(([^)#:]+)[)#]", page.read_text()):
            assert (page.parent / link).exists(), (page.name, link)


# --- The quickstart, run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_folder(quick_demo, tmp_path_factory):
    """A working folder in which `danet_demo` is the quick demo's output."""
    output_dir, _ = quick_demo
    work = tmp_path_factory.mktemp("readme")
    (work / "danet_demo").symlink_to(output_dir, target_is_directory=True)
    return work


@pytest.fixture(scope="module")
def photo(quick_demo):
    output_dir, _ = quick_demo
    return sorted((output_dir / "demo_city" / "leftImg8bit" / "val").rglob("*.png"))[0]


def test_readme_your_own_photo(demo_folder, photo, monkeypatch):
    monkeypatch.chdir(demo_folder)
    arguments = readme_command("predict")
    photos = demo_folder / arguments[arguments.index("--model") + 2]
    photos.mkdir(exist_ok=True)
    (photos / "street.png").write_bytes(photo.read_bytes())
    assert main(arguments) == 0
    labels = demo_folder / arguments[arguments.index("-o") + 1] / "street.png_labels.png"
    # At the photo's own size, whatever --short-side the model ran at.
    assert Image.open(labels).size == Image.open(photo).size


@pytest.mark.slow
def test_readme_model_fit(demo_folder, monkeypatch):
    monkeypatch.chdir(demo_folder)
    (block,) = [b for b in code_blocks(README, "python") if "model.fit(" in b]
    # One epoch: a test of the code, not of the training.
    code = block.replace("epochs=2", "epochs=1")
    assert code != block
    exec(compile(code, "README.md", "exec"), {})
    assert (demo_folder / "danet.keras").exists()


class ServingStandIn:
    """TF Serving's REST `predict` on a base folder of versions, in this process.

    As TF Serving does by default, it serves the latest version; its answers are written
    as TF Serving writes them (`benchmarks/response_size.py`).
    """

    URL = re.compile(r"http://localhost:8501/v1/models/danet:predict")

    def __init__(self, base):
        import tensorflow as tf

        self.tf = tf
        latest = max(int(path.name) for path in base.iterdir() if path.name.isdigit())
        self.loaded = tf.saved_model.load(str(base / str(latest)))
        spec = importlib.util.spec_from_file_location(
            "response_size", ROOT / "benchmarks" / "response_size.py"
        )
        self.writer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.writer)

    def post(self, url, json=None):
        assert self.URL.fullmatch(url), url
        signature = self.loaded.signatures[json.get("signature_name", "serving_default")]
        ((name, spec),) = signature.structured_input_signature[1].items()
        if spec.dtype == self.tf.string:  # {"b64": ...} objects, as TF Serving decodes them
            values = [base64.b64decode(instance["b64"]) for instance in json["instances"]]
        else:
            values = np.asarray(json["instances"], spec.dtype.as_numpy_dtype)
        outputs = signature(**{name: self.tf.constant(values)})
        text = self.writer.rest_response_text({k: v.numpy() for k, v in outputs.items()})
        return types.SimpleNamespace(json=lambda: json_module.loads(text))


@pytest.mark.slow
def test_readme_serve_it(demo_folder, photo, monkeypatch):
    monkeypatch.chdir(demo_folder)
    # The exports of "Serve it" (the "Backends" section exports a JAX-trained model).
    exports = [a for a in danet_keras_arguments(README) if a[0] == "export"]
    first, class_ids_only = [a for a in exports if "danet_demo/training/best.keras" in a]
    no_parity = ["--num-parity-images", "0"]  # the parity report is another test's
    assert main(first + no_parity) == 0
    # The README's requests, to version 1: every output.
    (block,) = [b for b in code_blocks(README, "python") if "requests.post" in b]
    (demo_folder / "photo.png").write_bytes(photo.read_bytes())
    server = ServingStandIn(demo_folder / "danet")
    monkeypatch.setitem(sys.modules, "requests", types.SimpleNamespace(post=server.post))
    example = {}
    exec(compile(block, "README.md", "exec"), example)
    assert example["class_ids"].shape == np.asarray(Image.open(photo)).shape[:2]
    from_bytes = example["answer"]["predictions"][0]
    np.testing.assert_array_equal(from_bytes["class_ids"], example["class_ids"])  # PNG: lossless
    # Version 2, exported with --outputs class_ids: both signatures return that alone, and
    # the answer is the class map itself.
    assert main(class_ids_only + no_parity) == 0
    server = ServingStandIn(demo_folder / "danet")
    for name in ("serving_default", "serve_image_bytes"):
        assert list(server.loaded.signatures[name].structured_outputs) == ["class_ids"]
    request = {"instances": [example["pixels"].tolist()]}
    answer = server.post("http://localhost:8501/v1/models/danet:predict", json=request).json()
    # The same model exported again: classes as version 1's, but for near-ties.
    assert_classes_agree(np.array(answer["predictions"][0]), np.array(from_bytes["logits"]))
