import subprocess
import sys

import pytest

CHECK = """
import keras
for name in ("DANet", "DilatedResNet", "PositionAttention", "MeanIoU", "LayerwiseSGD"):
    assert keras.saving.get_registered_object(f"danet_keras>{name}") is not None, name
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "first_import",
    [
        "import danet_keras",  # then Keras
        # Keras first imported by one of the package's own modules, half loaded at that
        # moment: registering must wait until it is whole (no circular import).
        "from danet_keras.layers import PositionAttention",
        "import danet_keras.metrics",
        "from danet_keras import DANet",
    ],
)
def test_classes_are_registered_with_keras_whatever_is_imported_first(first_import, tmp_path):
    process = subprocess.run(
        [sys.executable, "-c", first_import + "\n" + CHECK],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
