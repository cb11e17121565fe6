"""The numbers of the paper's optimizer, written once (no TensorFlow: `TrainConfig` reads them).

`danet_keras.optimizers.recipe.paper_optimizer` (so `DANet.compile()`) takes them
as its defaults, and `TrainConfig` (so `danet_keras.train`, `danet-keras train`)
as its own.
"""

# The official code's base (backbone) learning rate on Cityscapes, and the paper's elsewhere.
BASE_LEARNING_RATE = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
HEAD_LR_MULTIPLIER = 10.0
POLY_POWER = 0.9
