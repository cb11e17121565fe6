"""Inference: the strategies (plain, sliding window, multi-scale + flip), evaluation, attention
maps and the inference-graph rewrite.

`danet_keras.inference.sliding_window_logits` etc. are the strategies of
`inference.strategies`; `inference.evaluation` is the mIoU loop.
"""

from danet_keras.inference.strategies import (
    PAPER_SCALES,
    logits_function,
    multi_scale_logits,
    resize_logits,
    sliding_window_logits,
    window_starts,
)

__all__ = [
    "PAPER_SCALES",
    "logits_function",
    "multi_scale_logits",
    "resize_logits",
    "sliding_window_logits",
    "window_starts",
]
