import io
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from danet_keras import DANet
from danet_keras.apps.benchmark.measure import one_image_peak_rss_mb
from danet_keras.export import export_saved_model, load_runner
from danet_keras.export.runners import KerasRunner
from danet_keras.export.saved_model import serving_output_keys
from danet_keras.export.tflite import saved_model_ops
from danet_keras.inference.optimize import inference_model

from ..numerics import assert_classes_agree, assert_outputs_match, logit_tolerance

# Runs in a fresh interpreter: loads the SavedModel without danet_keras and
# saves the outputs of both signatures on the images it is given (as
# uint8 tensors and as PNG bytes).
FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    path, inputs, outputs = sys.argv[1:4]
    loaded = tf.saved_model.load(path)
    assert not any(name.startswith("danet_keras") for name in sys.modules), "danet_keras imported"
    data = np.load(inputs)
    results = {}
    for key in data.files:
        out = loaded.signatures["serving_default"](images=tf.constant(data[key]))
        for name, value in out.items():
            results[f"{key}/tensor/{name}"] = value.numpy()
        png = tf.stack([tf.io.encode_png(image) for image in data[key]])
        out = loaded.signatures["serve_image_bytes"](image_bytes=png)
        for name, value in out.items():
            results[f"{key}/bytes/{name}"] = value.numpy()
    np.savez(outputs, **results)
    """
)


def png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize(
    "serving_env",
    [
        {},
        # Eigen's kernels, as a TensorFlow without oneDNN (many model servers) runs the
        # graph exported here: the inference graph's ops must exist there too.
        {"TF_ENABLE_ONEDNN_OPTS": "0"},
    ],
    ids=["same_kernels", "onednn_off"],
)
def test_fresh_process_signatures_match_keras_at_two_sizes(
    small_danet, default_export_dir, test_images, tmp_path, serving_env
):
    np.savez(
        tmp_path / "inputs.npz", **{f"images{i}": images for i, images in enumerate(test_images)}
    )
    script = tmp_path / "serve.py"
    script.write_text(FRESH_PROCESS_SCRIPT)
    subprocess.run(
        [
            sys.executable,
            str(script),
            default_export_dir,
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        cwd=tmp_path,  # not the repository: `import danet_keras` must not be possible by accident
        env={**os.environ, **serving_env},
    )
    results = np.load(tmp_path / "out.npz")
    for index, images in enumerate(test_images):
        reference = KerasRunner(small_danet)(images)
        served = {
            k.split("/")[-1]: results[k]
            for k in results.files
            if k.startswith(f"images{index}/tensor/")
        }
        assert served["class_ids"].dtype == np.int32
        assert served["class_ids"].shape == images.shape[:3]
        assert served["probabilities"].shape == images.shape[:3] + (5,)
        # Another process, and the serving graph: other kernels, other rounding.
        assert_outputs_match(served, reference)
        # The bytes signature is another graph (decode, then the model): same bound.
        from_bytes = {
            k.split("/")[-1]: results[k]
            for k in results.files
            if k.startswith(f"images{index}/bytes/")
        }
        assert_outputs_match(from_bytes, reference)


def test_saved_model_cli_lists_signatures(default_export_dir):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    listing = subprocess.run(
        [cli, "show", "--dir", default_export_dir, "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    default = listing.split("signature_def['serving_default']")[1]
    assert "inputs['images']" in default and "DT_UINT8" in default and "(-1, -1, -1, 3)" in default
    assert "outputs['class_ids']" in default and "DT_INT32" in default and "(-1, -1, -1)" in default
    assert "outputs['probabilities']" in default and "(-1, -1, -1, 5)" in default
    image_bytes = listing.split("signature_def['serve_image_bytes']")[1].split("signature_def[")[0]
    assert (
        "inputs['image_bytes']" in image_bytes
        and "DT_STRING" in image_bytes
        and "shape: (-1)" in image_bytes
    )


def test_exported_position_attention_is_the_chunked_loop(small_danet, default_export_dir):
    assert small_danet.get_layer("position_attention").block_size < 96  # 3 blocks at 64 x 96
    ops = saved_model_ops(default_export_dir)
    assert ops["While"] + ops["StatelessWhile"] >= 1


@pytest.mark.parametrize(
    "signature, value, message",
    [
        ("serving_default", np.zeros((1, 64, 96, 3), np.float32), "uint8"),
        (
            "serving_default",
            np.zeros((64, 96, 3), np.uint8),
            r"not compatible with expected shape \[\?,\?,\?,3\]",
        ),
        (
            "serving_default",
            np.zeros((1, 64, 96, 4), np.uint8),
            r"not compatible with expected shape \[\?,\?,\?,3\]",
        ),
        ("serve_image_bytes", np.array([b"not an image"]), "Unknown image file format"),
        (
            "serve_image_bytes",
            np.array(
                [
                    png_bytes(np.zeros((64, 96, 3), np.uint8)),
                    png_bytes(np.zeros((48, 80, 3), np.uint8)),
                ]
            ),
            "must have the same height and width",
        ),
    ],
    ids=["float", "rank3", "4channels", "not_an_image", "mixed_sizes"],
)
def test_bad_input_raises_invalid_argument(default_export, signature, value, message):
    function = default_export.signatures[signature]
    key = "images" if signature == "serving_default" else "image_bytes"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(**{key: tf.constant(value)})


@pytest.mark.slow
def test_resize_to_model_size(small_danet, test_images, tmp_path):
    path = export_saved_model(
        small_danet,
        str(tmp_path / "resized"),
        image_size=(64, 96),
        resize_images=True,
        include_image_bytes=False,
    )
    function = tf.saved_model.load(path).signatures["serving_default"]
    at_model_size, other_size = test_images
    outputs = function(images=tf.constant(at_model_size))
    # At the model's size the resize is the identity; the graph is still another one.
    assert_classes_agree(outputs["class_ids"], KerasRunner(small_danet)(at_model_size)["logits"])
    outputs = function(images=tf.constant(other_size))
    assert outputs["class_ids"].shape == other_size.shape[:3]
    assert outputs["logits"].shape == other_size.shape[:3] + (5,)


def test_resize_images_needs_image_size(small_danet, tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        export_saved_model(small_danet, str(tmp_path / "x"), resize_images=True)


def test_every_variable_is_saved_once(small_danet, default_export_dir):
    # Tracking the model as well as the endpoints once stored each variable twice (its Keras
    # wrapper and its tf.Variable): a SavedModel twice the size, loaded twice into memory.
    reader = tf.train.load_checkpoint(os.path.join(default_export_dir, "variables", "variables"))
    saved = [
        int(np.prod(shape))
        for name, shape in reader.get_variable_to_shape_map().items()
        if name.endswith("VARIABLE_VALUE")
    ]
    weights = inference_model(small_danet).weights
    assert len(saved) == len(weights)
    assert sum(saved) == sum(int(np.prod(w.shape)) for w in weights)


# --- What the signatures return -------------------------------------------------------------


def signature_outputs(path):
    """{signature name: sorted output names} of the two serving signatures."""
    loaded = tf.saved_model.load(str(path))
    return {
        name: sorted(loaded.signatures[name].structured_outputs)
        for name in ("serving_default", "serve_image_bytes")
    }


@pytest.mark.slow
def test_outputs_choose_what_both_signatures_return(small_danet, test_images, tmp_path):
    path = export_saved_model(
        small_danet, tmp_path / "danet" / "1", outputs=("logits", "class_ids")
    )
    assert signature_outputs(path) == {
        "serving_default": ["class_ids", "logits"],
        "serve_image_bytes": ["class_ids", "logits"],
    }
    images = test_images[0]
    loaded = tf.saved_model.load(path)
    reference = KerasRunner(small_danet)(images)
    from_tensors = loaded.signatures["serving_default"](images=tf.constant(images))
    from_bytes = loaded.signatures["serve_image_bytes"](
        image_bytes=tf.constant([png_bytes(image) for image in images])
    )
    for outputs in (from_tensors, from_bytes):
        assert_classes_agree(outputs["class_ids"], reference["logits"])
    # The runner of such an artefact returns what it has, and knows K from its class names.
    runner = load_runner(path)
    assert runner.num_classes == 5 and sorted(runner(images)) == ["class_ids", "logits"]


def test_outputs_are_checked_and_include_logits_still_works():
    assert serving_output_keys(None) == ("class_ids", "probabilities", "logits")
    assert serving_output_keys("logits, class_ids") == ("class_ids", "logits")
    for bad in ((), ("class_ids", "scores"), "class_ids,,logits"):
        with pytest.raises(ValueError, match="`outputs` takes one or more of class_ids"):
            serving_output_keys(bad)
    with pytest.warns(DeprecationWarning, match="include_logits"):
        assert serving_output_keys(None, include_logits=False) == ("class_ids", "probabilities")
    with pytest.raises(ValueError), pytest.warns(DeprecationWarning):
        serving_output_keys(("logits",), include_logits=False)


# --- Mixed precision ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("optimize", [True, False], ids=["inference_graph", "as_built"])
def test_a_mixed_precision_model_exports_a_float32_saved_model(
    small_danet, test_images, tmp_path, optimize
):
    """A model built under `mixed_float16` (as the notebook trains on a GPU) serves float32."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = DANet.from_config(small_danet.get_config())
        mixed.set_weights(small_danet.get_weights())
        assert mixed.get_layer("fused_classifier").compute_dtype == "float16"
        path = export_saved_model(mixed, tmp_path / "danet" / "1", optimize=optimize)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    images = test_images[0]
    reference = KerasRunner(small_danet)(images)  # the float32 model
    served = {key: value.numpy() for key, value in signature(images=tf.constant(images)).items()}
    assert served["logits"].dtype == np.float32
    # Float32 against float32 through another graph: kernel rounding only (tests/numerics.py).
    # The float16 model itself is ~4e-3 of the logit range away, 40x the tolerance.
    assert_outputs_match(served, reference)
    half = KerasRunner(mixed)(images)["logits"]
    assert np.abs(half - reference["logits"]).max() > logit_tolerance(reference["logits"])


@pytest.mark.slow
def test_a_served_export_peaks_at_no_more_memory_than_the_plain_model(tmp_path):
    # Memory only, never time. At 512x1024 a DANet-ResNet18's activations
    # (~0.5 GB) outweigh the gap between a TensorFlow-only process and one that
    # also imports Keras; the Winograd graph (4x the 3x3 kernels, its inputs
    # transformed at 2.25x) measured 1.2x the plain model's peak here.
    keras.utils.set_random_seed(0)
    model = DANet(19, backbone="resnet18")
    keras_path = str(tmp_path / "model.keras")
    model.save(keras_path)
    served_path = export_saved_model(model, str(tmp_path / "served"))
    size = (512, 1024)
    plain = one_image_peak_rss_mb("keras_call", keras_path, size, timeout_s=600)
    served = one_image_peak_rss_mb("served", served_path, size, timeout_s=600)
    print(f"peak RSS at 512x1024: served {served:.0f} MB, Keras model {plain:.0f} MB")
    assert served <= 1.10 * plain, (served, plain)
