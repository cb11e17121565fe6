"""TFDS readers against a stand-in builder that serves encoded examples as TFDS would."""

import io

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from danet_keras.data import load_dataset, tfds_dataset


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


class FakeBuilder:
    """What `tfds_dataset` uses of a prepared builder, with `SkipDecoding` semantics."""

    def __init__(self, image_key, label_key, labels):
        self.image_key, self.label_key, self.labels = image_key, label_key, labels
        self.data_dir = "/fake"
        self.read_configs = []

    def is_prepared(self):
        return True

    @property
    def info(self):
        class Split:
            num_examples = len(self.labels)

        class Info:
            splits = {"train": Split()}

        return Info()

    def as_dataset(self, split, shuffle_files, decoders, read_config):
        assert set(decoders) == {self.image_key, self.label_key}
        self.read_configs.append(read_config)
        images = [encode(np.full(label.shape[:2] + (3,), 9), "JPEG") for label in self.labels]
        labels = [encode(label, "PNG") for label in self.labels]
        return tf.data.Dataset.from_tensor_slices({self.image_key: images, self.label_key: labels})


@pytest.mark.parametrize(
    "name, image_key, label_key, raw, expected, classes",
    [
        ("cityscapes/semantic_segmentation", "image_left", "segmentation_label",
         np.array([[7, 26, 0, 1]], np.uint8)[..., None], [0, 13, 255, 255], 19),
        # TFDS stores scene_parse150 annotations as 3 equal channels.
        ("scene_parse150", "image", "annotation",
         np.array([[0, 1, 150, 2]], np.uint8)[..., None].repeat(3, -1), [255, 0, 149, 1], 150),
        ("oxford_iiit_pet", "image", "segmentation_mask",
         np.array([[1, 2, 3, 1]], np.uint8)[..., None], [1, 0, 255, 1], 2),
    ],
)  # fmt: skip
def test_tfds_datasets_map_their_labels(monkeypatch, name, image_key, label_key, raw, expected,
                                        classes):  # fmt: skip
    builder = FakeBuilder(image_key, label_key, [raw.repeat(2, 0).squeeze(-1) if raw.shape[-1] == 1
                                                 else raw.repeat(2, 0)])  # fmt: skip
    monkeypatch.setattr(tfds, "builder", lambda n, data_dir=None: builder)
    split = load_dataset(f"tfds:{name}", "/fake", "train")
    assert split.num_classes == classes and len(split) == 1
    ((image, label),) = [(i.numpy(), m.numpy()) for i, m in split.dataset]
    assert image.shape == (2, 4, 3) and image.dtype == np.uint8
    assert list(label[0]) == expected
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    split.records(context)
    assert builder.read_configs[-1].input_context is context


def test_unbuilt_tfds_dataset_is_not_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not built"):
        tfds_dataset("oxford_iiit_pet", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unsupported TFDS dataset"):
        tfds_dataset("mnist", data_dir=str(tmp_path))
