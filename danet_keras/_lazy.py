"""Lazy attributes for package `__init__`s: import a module on first use.

`import danet_keras` and the command line's `--help` must not import
TensorFlow (seconds, and log lines); the package re-exports its public API
through these, so `danet_keras.DANet` imports `danet_keras.models.danet`
only when first used.
"""

import importlib


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
