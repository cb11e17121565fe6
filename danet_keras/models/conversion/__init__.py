"""PyTorch DANet checkpoints -> Keras `DANet` weights (official DANet and mmsegmentation layouts).

    checkpoint.py   reading state dicts (`.pth`, `.safetensors`, `.npz`) safely
    names.py        which PyTorch tensor each Keras weight comes from
    config.py       the `DANet` configuration a checkpoint needs
    loader.py       copying a state dict into a `DANet`; building the converted model

It sits below the models' presets because `DANet.from_preset` converts a published
checkpoint when it downloads one; `danet_keras.convert` is its public face (and adds
output files and parity checks against the PyTorch reference).
"""
