"""Every use of Keras internals in danet_keras, in one place.

Keras 3 has no public API to walk a functional model's graph node by node,
which `optimize_for_inference` (rebuilding the graph) and the benchmark's
FLOP count need. What they rely on is read here only, each function saying
exactly which internal it uses; `tests/test_keras_internals.py` checks every
one of them and names the internal that a Keras upgrade changed (written
against Keras 3.15).
"""

import keras
from keras import tree


def is_functional(model):
    """Whether `model` is a functional Keras model (a graph of layers), nested ones included.

    Relies on: functional models (`keras.src.models.functional.Functional`)
    having the private `_nodes_by_depth` attribute, which subclassed models
    and `keras.Sequential` lack.
    """
    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def run_graph(model, inputs, visit):
    """Runs a functional model's graph node by node, descending into nested functional models.

    Relies on: `Functional._nodes_by_depth`, {depth: [node]}, the deepest
    nodes reading the model's inputs and depth 0 producing its outputs; and
    on each node (`keras.src.ops.node.Node`): `operation` (its layer),
    `is_input` (an `Input`'s node), `outputs` (its KerasTensors) and
    `arguments.fill_in({id(tensor): value})` (its call's `(args, kwargs)`
    with the tensors replaced by values).

    Args:
        model: a functional `keras.Model`.
        inputs: flat list of values standing for `model.inputs`.
        visit: `visit(node, args, kwargs)` -> the node's outputs, for every
            node that is not a nested functional model (`args`, `kwargs`: the
            node's call arguments with its input tensors replaced by values;
            `node.operation` is its layer, `node.outputs` its tensors).

    Returns:
        Flat list of values standing for `model.outputs`.
    """
    values = {id(tensor): value for tensor, value in zip(model.inputs, inputs)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            args, kwargs = node.arguments.fill_in(values)
            if is_functional(node.operation):
                outputs = run_graph(node.operation, tree.flatten(args), visit)
            else:
                outputs = visit(node, args, kwargs)
            for tensor, value in zip(node.outputs, tree.flatten(outputs)):
                values[id(tensor)] = value
    return [values[id(tensor)] for tensor in model.outputs]


def packed_like_model(model, inputs, outputs):
    """Flat `inputs` and `outputs` nested as `model`'s inputs and outputs (dicts, lists...).

    Relies on: `Functional._inputs_struct` and `Functional._outputs_struct`,
    the structures (dict, list or single tensor) a functional model was
    built with, whose flattening (`keras.tree.flatten`) is `model.inputs`
    and `model.outputs`.

    Returns:
        `(inputs, outputs)`, for `keras.Model(inputs, outputs)`.
    """
    return (
        tree.pack_sequence_as(model._inputs_struct, inputs),
        tree.pack_sequence_as(model._outputs_struct, outputs),
    )
