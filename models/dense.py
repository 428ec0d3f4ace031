"""The flatten-first MLP of the search space.

Flatten -> [Dense -> Dropout] x L -> Dense(10, softmax); glorot_uniform kernels, zero biases.
"""

from __future__ import annotations

import keras

from models.params import ModelParams

# Train steps per call into TensorFlow: the same updates, far fewer Python round trips. On the
# 2-core machine 32 made epochs 1.73x faster for 784-128-10, 1.63x for 784-512-512-10 and 1.19x
# for 784-380-210-10; 784-1024x3-10 was unsteady (1.78x slower in the recorded run, 2.05x
# faster in a second one). benchmarks/RESULTS.md, bench_training 2026-11-21 08:08.
STEPS_PER_EXECUTION = 32


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The three optimizers of the search space; SGD always with classical momentum 0.9."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}")


def build_dense(
    params: ModelParams,
    input_shape: tuple[int, ...] = (28, 28, 1),
    n_classes: int = 10,
    *,
    jit_compile: bool = False,
    optimizer: keras.optimizers.Optimizer | None = None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
) -> keras.Model:
    """A compiled Keras model for integer labels (sparse categorical cross-entropy).

    optimizer, when given, replaces make_optimizer(params.optimizer, params.learning_rate): the
    documented baselines need Keras' defaults (SGD without momentum), not the search's SGD.

    jit_compile defaults to False: on the 2-core CPU XLA made 784-512-512-10 and
    784-1024x3-10 up to 1.75x faster but 784-128-10 2.8x and 784-380-210-10 (batch 256) 8x
    slower (bench_training, 2026-11-21): a slowdown that large on common shapes outweighs the
    gain on big ones.
    """
    init = {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
    model = keras.Sequential(name="dense")
    model.add(keras.Input(shape=input_shape))
    model.add(keras.layers.Flatten())
    for i, (units, rate) in enumerate(zip(params.units, params.dropouts, strict=True)):
        model.add(
            keras.layers.Dense(units, activation=params.activation, name=f"dense_{i}", **init)
        )
        model.add(keras.layers.Dropout(rate, name=f"dropout_{i}"))
    model.add(keras.layers.Dense(n_classes, activation="softmax", name="output", **init))
    model.compile(
        optimizer=optimizer or make_optimizer(params.optimizer, params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
