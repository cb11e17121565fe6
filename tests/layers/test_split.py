import keras
import numpy as np
import pytest

from danet_keras.layers.split import ChannelSplit


def test_splits_channels_in_order_eagerly_and_symbolically():
    x = np.arange(2 * 3 * 3 * 7, dtype="float32").reshape(2, 3, 3, 7)
    parts = ChannelSplit([2, 5])(x)
    np.testing.assert_array_equal(parts[0], x[..., :2])
    np.testing.assert_array_equal(parts[1], x[..., 2:])
    symbolic = ChannelSplit([4, 3], name="split")(keras.Input((None, None, 7)))
    assert [p.shape for p in symbolic] == [(None, None, None, 4), (None, None, None, 3)]
    assert ChannelSplit.from_config(ChannelSplit([4, 3]).get_config()).sizes == (4, 3)


def test_rejects_empty_or_non_positive_sizes():
    with pytest.raises(ValueError, match="sizes"):
        ChannelSplit([])
    with pytest.raises(ValueError, match="sizes"):
        ChannelSplit([3, 0])
