"""The per-pixel "shallow DenseNet" of the documented baselines (FM-SHALLOW-* in baselines.md).

Dense layers act on the last axis of the unflattened (28, 28, 1) image, so every pixel is mapped
by the same weights to `n` features; only then is the result flattened. With one layer of 784
units this has exactly 6,148,138 trainable parameters. It is not part of the default search space
(one epoch of the 392-wide network takes minutes on a 2-core CPU).
"""

from __future__ import annotations

import keras


def build_shallow(
    units: tuple[int, ...],
    dropouts: tuple[float, ...],
    activation: str | None = None,
    *,
    input_shape: tuple[int, ...] = (28, 28, 1),
    n_classes: int = 10,
    learning_rate: float = 1e-4,
) -> keras.Model:
    """Input -> [Dense(n, act) -> Dropout(d)] x L -> Flatten -> Dense(10, softmax), compiled.

    activation None means linear ("none" in the baseline tables). The optimizer is the documented
    Adam(1e-4, epsilon=1e-4); the loss takes integer labels, equivalent to the documented one-hot
    categorical cross-entropy.
    """
    if len(units) != len(dropouts) or not units:
        raise ValueError("give one dropout rate per layer, and at least one layer")
    init = {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for i, (n, rate) in enumerate(zip(units, dropouts, strict=True)):
        x = keras.layers.Dense(n, activation=activation, name=f"pixel_dense_{i}", **init)(x)
        x = keras.layers.Dropout(rate, name=f"dropout_{i}")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output", **init)(x)
    model = keras.Model(inputs, outputs, name="shallow")
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate, epsilon=1e-4, beta_1=0.9, beta_2=0.999, amsgrad=False
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
