import numpy as np
import tensorflow as tf

from danet_keras.data.augment import augment_for_training, resize_short_side

BLOCK = 8


def blocky_pair(height=48, width=64):
    """Image of constant 8x8 blocks whose colour encodes the block's label, and that label."""
    rows, cols = np.mgrid[0:height, 0:width] // BLOCK
    label = (rows * 7 + cols * 3) % 19
    image = np.stack([label * 13, 255 - label * 13, (rows * 40) % 256], -1).astype(np.uint8)
    return image, label.astype(np.uint8)


def label_from_colour(image):
    return np.round(image[..., 0] / 13.0).astype(np.int64)


def interior(image):
    """Pixels whose 3x3 neighbourhood has one colour (away from resampled block edges)."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    same = np.ones(image.shape[:2], bool)
    for dy in range(3):
        for dx in range(3):
            same &= (padded[dy : dy + image.shape[0], dx : dx + image.shape[1]] == image).all(-1)
    return same


def test_label_stays_aligned_with_the_image_through_scale_pad_crop_and_flip():
    image, label = blocky_pair()
    checked = 0
    for index in range(12):
        out_image, out_label = augment_for_training(
            image,
            label,
            tf.constant([index, 7]),
            crop_size=(40, 56),
            scale_range=(0.5, 2.0),
            photometric=False,
        )
        out_image = np.round(out_image.numpy()).astype(np.int64)
        out_label = out_label.numpy()
        assert out_image.shape == (40, 56, 3) and out_label.shape == (40, 56)
        assert out_label.dtype == np.int32
        padded = out_label == 255
        assert (out_image[padded] == 0).all()  # padding: black image, ignored label
        inside = interior(out_image) & ~padded
        assert inside.sum() > 200
        np.testing.assert_array_equal(out_label[inside], label_from_colour(out_image)[inside])
        checked += inside.sum()
    assert checked > 5000


def test_a_one_pixel_offset_would_fail_the_alignment_check():
    image, label = blocky_pair()
    shifted = np.roll(label, 1, axis=1)
    inside = interior(image)
    assert (shifted[inside] != label_from_colour(image)[inside]).any()


def test_photometric_distortion_leaves_labels_alone_and_stays_in_range():
    image, label = blocky_pair()
    seeds = tf.constant([3, 4])
    plain_image, plain = augment_for_training(image, label, seeds, (48, 64), None, flip=False,
                                              photometric=False)  # fmt: skip
    jittered_image, jittered = augment_for_training(image, label, seeds, (48, 64), None,
                                                    flip=False)  # fmt: skip
    np.testing.assert_array_equal(plain.numpy(), jittered.numpy())
    np.testing.assert_array_equal(plain.numpy(), label)
    values = jittered_image.numpy()
    assert values.min() >= 0 and values.max() <= 255
    assert augment_for_training(image, label, seeds, (48, 64), None)[0].numpy().tolist() == (
        augment_for_training(image, label, seeds, (48, 64), None)[0].numpy().tolist()
    )


def test_resize_short_side_keeps_labels_nearest():
    image, label = blocky_pair(48, 64)
    out_image, out_label = resize_short_side(image, label, 24)
    assert out_image.shape == (24, 32, 3) and out_label.shape == (24, 32)
    assert set(np.unique(out_label.numpy())) <= set(np.unique(label))
    np.testing.assert_array_equal(out_label.numpy(), label[1::2, 1::2])
