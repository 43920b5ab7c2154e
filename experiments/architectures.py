"""The backbones, declared once and built in either framework, so the PyTorch and Keras runs share one design.

A spec is a tuple of layers: ("dense", units, activation), ("conv", filters, stride) = 3x3 convolution with
padding 1, batch normalization and ReLU, and ("flatten",). The last layer is the embedding.
"""

import math

ARCHITECTURES = {
    # digits: 64 pixels -> 3-layer MLP (the digits study)
    "mlp": (("dense", 128, "relu"), ("dense", 128, "relu"), ("dense", None, None)),
    # glyphs: three stride-2 conv blocks (8, 16, 32 channels), 24x24 -> 3x3, then a linear embedding
    "cnn": (("conv", 8, 2), ("conv", 16, 2), ("conv", 32, 2), ("flatten",), ("dense", None, None)),
}


def _check(name):
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_torch(name: str, input_shape: tuple, embedding_size: int):
    """An nn.Sequential for inputs of `input_shape` (without the batch axis)."""
    from torch import nn

    layers, shape = [], tuple(input_shape)
    for layer in _check(name):
        if layer[0] == "conv":
            _, filters, stride = layer
            layers += [nn.Conv2d(shape[0], filters, 3, stride, 1), nn.BatchNorm2d(filters), nn.ReLU()]
            shape = (filters, math.ceil(shape[1] / stride), math.ceil(shape[2] / stride))
        elif layer[0] == "flatten":
            layers.append(nn.Flatten())
            shape = (math.prod(shape),)
        else:
            _, units, activation = layer
            units = units or embedding_size
            layers.append(nn.Linear(shape[0], units))
            layers += [nn.ReLU()] if activation == "relu" else []
            shape = (units,)
    return nn.Sequential(*layers)


def build_keras(name: str, input_shape: tuple, embedding_size: int):
    """The same network in Keras 3 (channels-first input, as in PyTorch; BatchNorm with PyTorch's defaults)."""
    import keras

    inputs = keras.Input(tuple(input_shape))
    h = inputs
    if len(input_shape) == 3:
        h = keras.layers.Permute((2, 3, 1))(h)  # to channels-last, Keras' default for Conv2D
    for layer in _check(name):
        if layer[0] == "conv":
            _, filters, stride = layer
            h = keras.layers.ZeroPadding2D(1)(h)
            h = keras.layers.Conv2D(filters, 3, strides=stride, padding="valid")(h)
            h = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(h)
            h = keras.layers.ReLU()(h)
        elif layer[0] == "flatten":
            h = keras.layers.Permute((3, 1, 2))(h)  # back to channels-first, so flattening orders like PyTorch
            h = keras.layers.Flatten()(h)
        else:
            _, units, activation = layer
            h = keras.layers.Dense(units or embedding_size, activation=activation)(h)
    return keras.Model(inputs, h)
