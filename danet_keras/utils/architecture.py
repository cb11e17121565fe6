"""Facts about the architecture that the Keras model and the PyTorch reference share.

Plain data, no imports: `convert.torch_reference` (and the benchmarks'
PyTorch processes) use them without loading TensorFlow.
"""

# depth -> (block type, blocks per stage)
RESNET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

# ImageNet statistics of RGB in [0, 1], as torchvision and the official code.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
