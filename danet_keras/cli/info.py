"""`danet-keras info`: versions, devices and the model zoo of configurations."""

import platform
from importlib import metadata

from danet_keras.cli.arguments import add_boolean_argument

PACKAGES = (
    "danet-keras",
    "tensorflow",
    "keras",
    "keras-cv",
    "jax",
    "tensorflow-datasets",
    "numpy",
    "torch",
    "ai-edge-litert",
    "onnxruntime",
)


def package_versions():
    """{distribution name: version or None when not installed}."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def info_text(count_parameters=False):
    """The report that `danet-keras info` prints."""
    import tensorflow as tf

    from danet_keras.inference import calibration
    from danet_keras.inference.optimize import winograd_choice
    from danet_keras.models.preset_io import cache_dir
    from danet_keras.models.presets import BACKBONE_PRESETS, PRESETS
    from danet_keras.utils.backends import keras_backend
    from danet_keras.utils.cpu import kernels_description

    lines = [f"python               {platform.python_version()} ({platform.platform()})"]
    for name, version in package_versions().items():
        lines.append(f"{name:<20} {version or 'not installed'}")
    lines.append(f"keras backend        {keras_backend()} (KERAS_BACKEND: tensorflow, jax, torch)")
    lines.append("")
    lines.append("devices:")
    for device in tf.config.list_physical_devices():
        lines.append(f"  {device.device_type:<4} {device.name}")
    lines.append(f"cpu                  {kernels_description()}")
    lines.append(f"inference graph      {winograd_choice()}")
    lines.extend(f"                     {line}" for line in calibration.describe())
    lines.append("")
    lines.append(f"model zoo (`DANet.from_preset(name)`; weights are installed in {cache_dir()}):")
    for name, preset in PRESETS.items():
        lines.append(f"  {name}")
        lines.append(f"      {preset['description']}")
        config = ", ".join(f"{k}={v!r}" for k, v in preset["config"].items())
        lines.append(f"      config: {config}")
        lines.append(f"      reported: {preset['reported']} ({preset['source']})")
        lines.append(f"      weights: {weights_status(name, preset.get('weights'))}")
        if count_parameters:
            from danet_keras.models.danet import DANet

            model = DANet.from_preset(name, load_weights=False)
            lines.append(
                f"      trainable parameters: "
                f"{sum(int(v.numpy().size) for v in model.trainable_weights):,}"
            )
    lines.append("")
    lines.append("backbones (`DilatedResNet.from_preset(name)`, or `DANet(backbone=name)`):")
    for name, preset in BACKBONE_PRESETS.items():
        lines.append(f"  {name:<20} {preset['description']}")
        if preset.get("weights"):
            lines.append(f"      weights: {weights_status(name, preset['weights'])}")
    return "\n".join(lines)


def weights_status(name, weights):
    """Where the weights of preset `name` stand: installed, downloadable, by hand, or none."""
    # deferred: the model zoo's modules load with the command, not with `--help`
    from danet_keras.models.preset_io import local_preset_dir
    from danet_keras.models.presets import convert_command

    if not weights:
        return "none published (fresh weights)"
    if local_preset_dir(name):
        return f"installed in {local_preset_dir(name)}"
    if "hash" in weights:
        return f"download on first use from {weights['url']}"
    return f"by hand: {weights['url']} ({weights['manual']}); then {convert_command(name)}"


def run(args):
    print(info_text(count_parameters=args.parameters))


def register(subparsers):
    parser = subparsers.add_parser(
        "info", help="print versions, devices and the model zoo of configurations"
    )
    add_boolean_argument(
        parser, "--parameters", "also build each preset and count its parameters", default=False
    )
    parser.set_defaults(func=run)
