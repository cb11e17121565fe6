"""Lazy attributes for package `__init__`s: import a module on first use.

`import danet_keras` and the command line's `--help` must not import
TensorFlow (seconds, and log lines); the package re-exports its public API
through these, so `danet_keras.DANet` imports `danet_keras.models.danet`
only when first used. The classes that `.keras` files refer to are
registered with Keras the moment Keras is imported
(`register_serializables_with_keras`).
"""

import importlib
import importlib.abc
import importlib.util
import sys


def lazy_attributes(package, exports):
    """`__getattr__` and `__dir__` for `package` that resolve `exports` lazily.

    Args:
        package: the package's `__name__`.
        exports: {attribute: "module"} (the attribute is a submodule's
            object of that name) or {attribute: "module:"} (the attribute is
            that module itself).

    Returns:
        `(__getattr__, __dir__)` to assign at the package's top level.
    """

    def __getattr__(name):
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        return module if target.endswith(":") else getattr(module, attribute or name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__


# Modules whose import registers this package's Keras-serialisable classes.
SERIALIZABLE_MODULES = (
    "danet_keras.layers.attention",
    "danet_keras.layers.normalization",
    "danet_keras.layers.resize",
    "danet_keras.layers.split",
    "danet_keras.layers.winograd",
    "danet_keras.backbones.resnet",
    "danet_keras.models.danet",
    "danet_keras.metrics",
    "danet_keras.training.losses",
    "danet_keras.training.optimizer",
    "danet_keras.training.schedules",
)


def register_serializables():
    """Imports the modules that register DANet's layers, models, losses... with Keras."""
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `callback` once module `name` has been imported, whoever imports it."""

    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one-shot, and no recursion into the real lookup
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def execute_then_call(module):
            execute(module)
            self.callback()

        spec.loader.exec_module = execute_then_call
        return spec


def register_serializables_with_keras():
    """Registers DANet's classes with Keras as soon as Keras is imported (now, if it is).

    `import danet_keras` stays free of TensorFlow, yet `.keras` files that hold
    a DANet load with plain `keras.saving.load_model`, whichever of the two
    packages was imported first.
    """
    if "keras" in sys.modules:
        register_serializables()
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("keras", register_serializables))
