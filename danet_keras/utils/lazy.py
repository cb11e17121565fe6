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


class _ModuleAliases(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports each alias name as its target module: one module object under two names."""

    def __init__(self, aliases):
        self.aliases = dict(aliases)
        self._specs = {}

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.aliases:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(self.aliases[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module):
        # The import system has just set the alias's spec on the target: give its own back.
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def alias_modules(aliases):
    """Makes `import OLD` (and `from OLD import x`) import the module `NEW` of `{OLD: NEW}`.

    For the public modules that live in the subpackage of their job
    (`danet_keras.predict` is `danet_keras.apps.predict`): both names give the
    same module object, so patching one patches the other.
    """
    sys.meta_path.append(_ModuleAliases(aliases))


# Modules whose import registers this package's Keras-serialisable classes.
SERIALIZABLE_MODULES = (
    "danet_keras.layers.attention",
    "danet_keras.layers.normalization",
    "danet_keras.layers.resize",
    "danet_keras.layers.winograd",
    "danet_keras.models.dilated_resnet",
    "danet_keras.models.danet",
    "danet_keras.metrics",
    "danet_keras.losses",
    "danet_keras.optimizers.layerwise_sgd",
    "danet_keras.optimizers.schedules",
)


def register_serializables():
    """Imports the modules that register DANet's layers, models, losses... with Keras."""
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


def _is_initializing(module):
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


class _RegisterWhenImported(importlib.abc.MetaPathFinder):
    """Registers the serialisable classes once Keras is imported and no submodule is half loaded.

    Keras is often first imported by one of this package's own modules (say
    `from danet_keras.layers import PositionAttention`), whose classes do not
    exist yet at that moment: importing the other serialisable modules then
    would import the half-loaded one (a circular import). So the finder waits
    for the import of `keras` and of every `danet_keras.*` module to finish,
    and registers after the last of them, when none is half loaded.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras" and not fullname.startswith("danet_keras."):
            return None
        for finder in sys.meta_path:  # the real lookup, by the other finders
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def execute_then_check(module):
            execute(module)
            self.register_if_ready(loaded=module)

        spec.loader.exec_module = execute_then_check
        return spec

    def register_if_ready(self, loaded):
        """Registers unless Keras is missing or a module other than `loaded` is half loaded."""
        if "keras" not in sys.modules or self not in sys.meta_path:
            return
        loading = [
            name
            for name, module in list(sys.modules.items())
            if (name == "keras" or name.startswith("danet_keras."))
            and module is not loaded
            and _is_initializing(module)
        ]
        if not loading:
            sys.meta_path.remove(self)
            register_serializables()


def register_serializables_with_keras():
    """Registers DANet's classes with Keras as soon as Keras is imported (now, if it is).

    `import danet_keras` stays free of TensorFlow, yet `.keras` files that hold
    a DANet load with plain `keras.saving.load_model`, whichever of the two
    packages was imported first.
    """
    if "keras" in sys.modules:
        register_serializables()
    elif not any(isinstance(finder, _RegisterWhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenImported())
