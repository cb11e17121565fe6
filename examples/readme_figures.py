"""The README's pictures, drawn from the model that `danet-keras demo` trains.

    danet-keras demo                     # trains danet_demo/training/best.keras (about 10 min)
    python examples/readme_figures.py    # writes docs/images/*.png

Writes, for images of the demo city's validation split:

    overlays.png             image / ground truth / prediction, with a class legend
    position_attention.png   where the position attention of three pixels looks
    channel_attention.png    three channels of the channel attention's output

The pictures are `danet_keras.visualize`'s figures, as the demo writes them
(`danet_keras.apps.demo.write_attention_figures`).
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="danet_demo/training/best.keras")
    parser.add_argument("--data-dir", default="danet_demo/demo_city", help="the demo city")
    parser.add_argument("-o", "--output", default="docs/images")
    parser.add_argument(
        "--images", type=int, nargs="+", default=[0], help="validation images of the overlays"
    )
    parser.add_argument(
        "--attention-image", type=int, default=0, help="validation image of the attention figures"
    )
    # Each PNG stays under 300 KB (the demo city's textures compress poorly: about 190 KB
    # per overlay row) with its text legible at README width.
    parser.add_argument("--dpi", type=int, default=95, help="PNG resolution (default 95)")
    args = parser.parse_args(argv)

    import numpy as np

    from danet_keras.apps.demo import write_attention_figures
    from danet_keras.data import eval_pipeline, load_dataset
    from danet_keras.models.loading import load_keras_model
    from danet_keras.visualize import plot_overlays, save_figure

    model = load_keras_model(args.model)
    wanted = sorted(set(args.images) | {args.attention_image})
    examples = {}
    for index, (image, label) in enumerate(
        eval_pipeline(load_dataset("demo_city", args.data_dir, "val"))
    ):
        if index in wanted:
            examples[index] = (np.asarray(image)[0], np.asarray(label)[0])
        if len(examples) == len(wanted):
            break
    missing = sorted(set(wanted) - set(examples))
    if missing:
        raise ValueError(f"the validation split has no images {missing}.")
    images = np.stack([examples[i][0] for i in args.images])
    labels = np.stack([examples[i][1] for i in args.images])
    predictions = np.asarray(model.predict(images, verbose=0)["logits"]).argmax(-1)
    os.makedirs(args.output, exist_ok=True)
    written = [
        save_figure(
            plot_overlays(
                images,
                labels,
                predictions,
                model.class_names,  # the demo model's own: Cityscapes'
                model.palette,
                titles=[f"validation image {i}" for i in args.images],
            ),
            os.path.join(args.output, "overlays.png"),
            dpi=args.dpi,
        )
    ]
    image, label = examples[args.attention_image]
    written += write_attention_figures(model, image, label, args.output, dpi=args.dpi).values()
    for path in written:
        print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
