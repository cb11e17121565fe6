"""What danet_keras/keras_internals.py relies on, checked one internal at a time.

A failure here names the Keras internal that an upgrade changed: fix
`danet_keras/keras_internals.py` (the only user), not the callers.
"""

import keras
import numpy as np

from danet_keras.inference.keras_internals import is_functional, packed_like_model, run_graph


def nested_model():
    """A functional model with a nested functional model and dict outputs."""
    inner_input = keras.Input((4,), name="inner_input")
    inner = keras.Model(inner_input, keras.layers.Dense(3, name="dense")(inner_input), name="inner")
    image = keras.Input((4,), name="image")
    hidden = inner(image)
    outputs = {"scores": keras.layers.ReLU(name="relu")(hidden), "hidden": hidden}
    return keras.Model({"image": image}, outputs, name="outer")


def changed(internal, detail):
    return f"Keras internal `{internal}` changed ({keras.__version__}): {detail}"


def test_functional_models_keep_their_nodes_by_depth():
    model = nested_model()
    internal = "Functional._nodes_by_depth"
    depths = getattr(model, "_nodes_by_depth", None)
    assert isinstance(depths, dict), changed(internal, f"got {type(depths).__name__}")
    assert all(isinstance(depth, int) for depth in depths), changed(internal, "non-int depths")
    operations = [node.operation for depth in sorted(depths) for node in depths[depth]]
    names = [getattr(operation, "name", None) for operation in operations]
    assert names[0] == "relu" and "inner" in names, changed(internal, f"order {names}")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert is_functional(model) and is_functional(model.get_layer("inner"))
    assert not is_functional(Subclassed()), changed(internal, "subclassed models have it")
    assert not is_functional(keras.layers.Dense(2)), changed(internal, "layers have it")


def test_nodes_have_operation_outputs_is_input_and_arguments():
    model = nested_model()
    nodes = [node for depth in model._nodes_by_depth.values() for node in depth]
    for node in nodes:
        for attribute in ("operation", "outputs", "is_input", "arguments"):
            assert hasattr(node, attribute), changed(f"Node.{attribute}", "missing")
    # Every tensor of the graph is some node's output (an Input's node's, for the inputs).
    values = {id(t): f"value of {t.name}" for node in nodes for t in node.outputs}
    called = [node for node in nodes if not node.is_input]
    assert [node.operation.name for node in called] == ["relu", "inner"], changed(
        "Node.is_input", "the Input nodes are not the only ones marked"
    )
    for node in called:
        assert all(isinstance(t, keras.KerasTensor) for t in node.outputs), changed(
            "Node.outputs", f"{node.outputs!r}"
        )
        filled = node.arguments.fill_in(values)
        assert isinstance(filled, tuple) and len(filled) == 2, changed(
            "Node.arguments.fill_in", f"returned {filled!r}, not (args, kwargs)"
        )
        args, kwargs = filled
        assert isinstance(args, (list, tuple)) and isinstance(kwargs, dict), changed(
            "Node.arguments.fill_in", f"returned {filled!r}"
        )
        assert str(args[0]).startswith("value of"), changed(
            "Node.arguments.fill_in", f"tensors not replaced: {args!r}"
        )


def test_functional_models_keep_their_input_and_output_structures():
    model = nested_model()
    for internal, flat in (("_inputs_struct", model.inputs), ("_outputs_struct", model.outputs)):
        structure = getattr(model, internal, None)
        assert isinstance(structure, dict), changed(f"Functional.{internal}", f"{structure!r}")
        assert keras.tree.flatten(structure) == flat, changed(
            f"Functional.{internal}", "its flattening is not the model's flat tensors"
        )
    inputs, outputs = packed_like_model(model, ["x"], ["h", "s"])
    assert inputs == {"image": "x"} and outputs == {"hidden": "h", "scores": "s"}


def test_run_graph_computes_the_model_through_the_nested_one():
    model = nested_model()
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    visited = []

    def visit(node, args, kwargs):
        visited.append(node.operation.name)
        return node.operation(*args, **kwargs)

    outputs = run_graph(model, [x], visit)
    expected = model({"image": x})
    assert visited == ["dense", "relu"]
    _, packed = packed_like_model(model, [x], outputs)
    for name in ("hidden", "scores"):
        np.testing.assert_allclose(packed[name], expected[name], rtol=1e-6)


def test_run_graph_takes_list_inputs_and_outputs():
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], [keras.layers.Add()([a, b])])
    inputs = [np.full((1, 3), value, "float32") for value in (1.0, 2.0)]
    outputs = run_graph(model, inputs, lambda node, args, kwargs: node.operation(*args, **kwargs))
    assert len(outputs) == 1
    np.testing.assert_allclose(outputs[0], np.full((1, 3), 3.0))
    assert packed_like_model(model, ["a", "b"], ["sum"]) == (["a", "b"], ["sum"])
