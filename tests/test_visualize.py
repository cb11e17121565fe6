import numpy as np
import pytest

from danet_keras.data import DATASETS
from danet_keras.visualize import (
    class_names_and_palette,
    colorize,
    legend,
    overlay,
    plot_channel_attention,
    plot_confusion_matrix,
    plot_overlays,
    plot_position_attention,
)


def test_colorize_uses_the_dataset_palette_and_blacks_out_ignore():
    labels = np.array([[0, 13, 255]])
    colours = colorize(labels, "cityscapes")
    assert colours.dtype == np.uint8 and colours.shape == (1, 3, 3)
    assert colours[0].tolist() == [[128, 64, 128], [0, 0, 142], [0, 0, 0]]
    assert colorize(labels[None], DATASETS["cityscapes"]).shape == (1, 1, 3, 3)
    assert colorize([[1]], [[1, 2, 3], [4, 5, 6]]).tolist() == [[[4, 5, 6]]]


def test_colorize_refuses_values_outside_the_palette():
    with pytest.raises(ValueError, match="label value 19 is outside"):
        colorize(np.array([[19]]), "cityscapes")
    with pytest.raises(ValueError, match="unknown dataset"):
        colorize(np.array([[0]]), "mnist")


def test_overlay_blends_and_leaves_ignored_pixels():
    image = np.full((1, 2, 3), 100, np.uint8)
    blended = overlay(image, np.array([[0, 255]]), "pascal_voc", alpha=0.5)
    assert blended[0, 0].tolist() == [50, 50, 50]  # VOC background is black
    assert blended[0, 1].tolist() == [100, 100, 100]
    assert overlay(image, np.array([[1, 1]]), "pascal_voc", alpha=1.0)[0, 0].tolist() == [128, 0, 0]
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, np.zeros((2, 2), int))


def test_legend_pairs_names_and_colours():
    entries = legend("cityscapes")
    assert len(entries) == 19 and entries[0] == ("road", (128, 64, 128))
    assert legend(["a"], [[1, 2, 3]]) == [("a", (1, 2, 3))]


# --- Figures ---


def legend_names(figure):
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def titles(figure):
    return [axes.get_title() for axes in figure.axes if axes.get_title()]


def test_class_names_and_palette_fall_back_to_numbered_names_and_the_voc_colours():
    names, colours = class_names_and_palette(3)
    assert names == ["class_0", "class_1", "class_2"]
    assert colours.tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    names, colours = class_names_and_palette(None, palette="cityscapes")
    assert len(names) == 19 and names[13] == "car" and colours[13].tolist() == [0, 0, 142]
    assert class_names_and_palette(2, ["a", "b"], [[1, 2, 3], [4, 5, 6]])[0] == ["a", "b"]
    # A model with more classes than the dataset names: numbered names, and too few colours.
    with pytest.raises(ValueError, match="21 classes but 21 names and 19 colours"):
        class_names_and_palette(21, palette="cityscapes")


def test_plot_overlays_titles_the_panels_and_lists_the_classes_present():
    images = np.full((2, 8, 16, 3), 90, np.uint8)
    labels = np.zeros((2, 8, 16), np.int64)
    labels[0, :, 8:] = 13
    labels[1, 0, 0] = 255
    predictions = np.zeros_like(labels)
    predictions[1, :4] = 10
    figure = plot_overlays(images, labels, predictions, palette="cityscapes", titles=["a", "b"])
    assert titles(figure) == [
        "a", "ground truth", "prediction (pixel accuracy 50.0%)",
        "b", "ground truth", "prediction (pixel accuracy 50.4%)",  # 64 of 127 scored
    ]  # fmt: skip
    assert legend_names(figure) == ["road", "sky", "car"]
    # Without names or palette: numbered classes up to the largest id shown.
    assert legend_names(plot_overlays(images[0], predictions=np.full((8, 16), 2))) == ["class_2"]
    with pytest.raises(ValueError, match="2 images but 1 ground truth maps"):
        plot_overlays(images, labels[:1])


def test_plot_confusion_matrix_shows_only_the_classes_present():
    matrix = np.zeros((4, 4), np.int64)
    matrix[0, 0], matrix[2, 0], matrix[2, 2] = 5, 1, 3
    figure = plot_confusion_matrix(matrix, ["road", "wall", "sky", "car"])
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["road", "sky"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["road", "sky"]
    assert axes.get_title().startswith("Confusion matrix")
    assert [t.get_text() for t in plot_confusion_matrix(matrix).axes[0].get_xticklabels()] == [
        "class_0",
        "class_2",
    ]


def test_plot_position_attention_marks_each_point_and_names_its_class(
    attention_danet, attention_image
):
    model, image = attention_danet, attention_image
    from danet_keras.inference.attention_maps import position_attention_maps

    points = [(10, 20), (50, 80)]
    names = ["sky", "road", "car", "tree", "wall"]
    figure = plot_position_attention(model, image, points, class_names=names, palette="cityscapes")
    maps = position_attention_maps(model, image, points)
    predicted = [names[k] for k in maps.predicted_classes()]
    assert titles(figure)[:3] == [
        "prediction and points",
        f"point 1 (y=10, x=20): {predicted[0]}",
        f"point 2 (y=50, x=80): {predicted[1]}",
    ]
    assert figure.texts[0].get_text().startswith("Position attention")  # the figure's title
    assert legend_names(figure) == [names[k] for k in np.unique(maps.class_ids)]
    panels = [axes for axes in figure.axes if axes.get_title().startswith("point")]
    for number, ((y, x), panel) in enumerate(zip(points, panels), start=1):
        (marker,) = [line for line in panel.lines if line.get_gid() == f"attention_point_{number}"]
        assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (x, y)
        # The heat map shows the point's weights; its colour scale starts at 0.
        heat = panel.images[-1]
        np.testing.assert_array_equal(heat.get_array(), maps.upsampled()[number - 1])
        assert heat.get_clim()[0] == 0.0 and heat.colorbar.ax.get_ylabel() == "attention weight"


def test_plot_channel_attention_titles_each_channel(attention_danet, attention_image):
    figure = plot_channel_attention(attention_danet, attention_image, [3, 7])
    shown = titles(figure)
    assert shown[0] == "prediction"
    assert [t.split(":")[0] for t in shown[1:]] == ["channel 3", "channel 7"]
    assert all("strongest on class_" in t for t in shown[1:])
    assert figure.texts[0].get_text().startswith("Channel attention")
    assert legend_names(figure)[0].startswith("class_")
