"""Build a DANet, segment an image, look at its attention, save and reload it.

    python examples/quickstart.py                       # ResNet-50, 512x1024 input
    python examples/quickstart.py --backbone resnet18 --size 128x256

Weights are random here (nothing is downloaded): the point is the API. Train
with `danet-keras train` or load a PyTorch checkpoint with `danet-keras convert`.
"""

import argparse
import os
import tempfile

import keras
import numpy as np

import danet_keras


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", default="512x1024", help="image size HxW")
    parser.add_argument("--num-classes", type=int, default=19)
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.split("x"))

    model = danet_keras.DANet(num_classes=args.num_classes, backbone=args.backbone)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    print(f"DANet-{args.backbone}: {trainable:,} trainable parameters")

    image = np.random.default_rng(0).integers(0, 256, size=(1, height, width, 3)).astype("float32")
    outputs = model.predict(image, verbose=0)
    for name, logits in outputs.items():
        print(f"{name:>16}: {logits.shape}")
    class_ids = outputs["logits"].argmax(-1)
    print(f"predicted classes present: {np.unique(class_ids).tolist()}")

    # The attention maps of the head, computed on the head's own input.
    head_input = keras.Model(model.input, model.get_layer("position_reduce_relu").output)(image)
    _, position_map = model.get_layer("position_attention")(
        head_input, return_attention_scores=True
    )
    print(f"position attention map (B, h, w, h, w): {tuple(position_map.shape)}")

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "danet.keras")
        model.save(path)
        restored = keras.models.load_model(path)
        same = np.array_equal(restored.predict(image, verbose=0)["logits"], outputs["logits"])
        print(f"saved and reloaded {path}: identical outputs = {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
