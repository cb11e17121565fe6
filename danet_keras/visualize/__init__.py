"""Pictures: coloured label maps, overlays, and the figures of the demo, `predict` and notebooks.

    colors = colorize(prediction, "cityscapes")          # (H, W, 3) uint8
    blended = overlay(image, prediction, "cityscapes")   # image with the classes tinted in
    figure = plot_overlays(images, labels, predictions, palette="cityscapes")
    figure = plot_position_attention(model, image, [(60, 100)], palette="cityscapes")
    figure = plot_channel_attention(model, image, channels=4, palette="cityscapes")
    figure = plot_confusion_matrix(matrix, class_names)  # a matplotlib Figure
    save_figure(figure, "confusion_matrix.png")

`colours` holds the array functions (uint8 images), `figures` the matplotlib
figures, which a notebook shows inline and `save_figure` writes; the names
and colours of classes come from `danet_keras.data.classes`. Every figure
that shows classes takes `class_names` and `palette`: a dataset name as
`palette` (e.g. `"cityscapes"`) gives both; without names, classes are called
`class_0`, `class_1`, ...; without a palette, they get the PASCAL VOC colour map.
"""

from typing import TYPE_CHECKING

from danet_keras.utils.lazy import lazy_attributes

_CLASSES = "danet_keras.data.classes"
_COLOURS = "danet_keras.visualize.colours"
_FIGURES = "danet_keras.visualize.figures"
# Lazy, so that the array functions import without matplotlib.
_EXPORTS = {
    "class_names_and_palette": _CLASSES,
    "legend": _CLASSES,
    "palette_of": _CLASSES,
    "classes_present": _COLOURS,
    "colorize": _COLOURS,
    "overlay": _COLOURS,
    "PANEL_WIDTH": _FIGURES,
    "add_class_legend": _FIGURES,
    "heat_map_overlay": _FIGURES,
    "new_figure": _FIGURES,
    "plot_channel_attention": _FIGURES,
    "plot_confusion_matrix": _FIGURES,
    "plot_overlays": _FIGURES,
    "plot_position_attention": _FIGURES,
    "plot_training_curves": _FIGURES,
    "save_confusion_matrix": _FIGURES,
    "save_figure": _FIGURES,
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
    from danet_keras.data.classes import (  # noqa: F401
        class_names_and_palette,
        legend,
        palette_of,
    )
    from danet_keras.visualize.colours import classes_present, colorize, overlay  # noqa: F401
    from danet_keras.visualize.figures import (  # noqa: F401
        PANEL_WIDTH,
        add_class_legend,
        heat_map_overlay,
        new_figure,
        plot_channel_attention,
        plot_confusion_matrix,
        plot_overlays,
        plot_position_attention,
        plot_training_curves,
        save_confusion_matrix,
        save_figure,
    )
