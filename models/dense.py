"""The flatten-first MLP of the search space.

Flatten -> [Normalization] -> [Dense -> [BatchNormalization] -> activation -> Dropout] x L ->
Dense(n_classes, softmax), or for regression Dense(1) -> Rescaling(target std, mean); glorot_uniform
kernels, zero biases.
"""

from __future__ import annotations

import keras
import numpy as np

from models.losses import SparseSmoothedCrossentropy
from models.params import ModelParams
from models.task import CLASSIFICATION, Task

# Train steps per call into TensorFlow: the same updates, far fewer Python round trips. On the
# 2-core machine 32 made epochs 1.73x faster for 784-128-10, 1.63x for 784-512-512-10 and 1.19x
# for 784-380-210-10; 784-1024x3-10 was unsteady (1.78x slower in the recorded run, 2.05x
# faster in a second one). benchmarks/RESULTS.md, bench_training 2026-11-21 08:08.
STEPS_PER_EXECUTION = 32


def make_optimizer(
    name: str,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    weight_decay: float = 0.0,
) -> keras.optimizers.Optimizer:
    """The three optimizers of the search space; SGD always with classical momentum 0.9.

    weight_decay is decoupled from the gradient (Keras applies it to every optimizer as AdamW
    does), so Adam with weight decay is AdamW.
    """
    decay = {"weight_decay": weight_decay} if weight_decay else {}
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, **decay)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, **decay)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, **decay)
    raise ValueError(f"unknown optimizer {name!r}")


def learning_rate_of(
    params: ModelParams, decay_steps: int | None
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A constant rate, or cosine decay to 0 over `decay_steps` optimizer steps."""
    if params.lr_schedule == "constant":
        return params.learning_rate
    if not decay_steps:
        raise ValueError("a cosine schedule needs decay_steps (steps per epoch x max epochs)")
    return keras.optimizers.schedules.CosineDecay(params.learning_rate, decay_steps=decay_steps)


def build_dense(
    params: ModelParams,
    input_shape: tuple[int, ...] = (28, 28, 1),
    n_classes: int = 10,
    *,
    jit_compile: bool = False,
    optimizer: keras.optimizers.Optimizer | None = None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
    feature_stats: tuple[np.ndarray, np.ndarray] | None = None,
    decay_steps: int | None = None,
    task: Task = CLASSIFICATION,
    target_stats: tuple[float, float] | None = None,
) -> keras.Model:
    """A compiled Keras model for integer labels (sparse categorical cross-entropy), or for a
    regression `task` one linear output (mean squared error; RMSE and MAE as metrics).

    target_stats: regression's (mean, standard deviation) of the training targets; the output
    is rescaled by them, so the network learns a standardised target and predicts in the
    target's own units. label_smoothing applies to classification only.

    feature_stats: (mean, variance) per input feature of the training split, for
    `params.standardize`; the Normalization layer carries them, so a saved model takes raw
    inputs. decay_steps: optimizer steps of the whole training, for a cosine schedule.

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
    if params.standardize:
        if feature_stats is None:
            raise ValueError("standardize needs feature_stats (mean, variance) of the inputs")
        mean, variance = (np.reshape(a, (-1,)) for a in feature_stats)
        model.add(keras.layers.Normalization(mean=mean, variance=variance, name="standardize"))
    for i, (units, rate) in enumerate(zip(params.units, params.dropouts, strict=True)):
        if params.batch_norm:
            model.add(keras.layers.Dense(units, name=f"dense_{i}", **init))
            model.add(keras.layers.BatchNormalization(name=f"batch_norm_{i}"))
            model.add(keras.layers.Activation(params.activation, name=f"activation_{i}"))
        else:
            model.add(
                keras.layers.Dense(units, activation=params.activation, name=f"dense_{i}", **init)
            )
        model.add(keras.layers.Dropout(rate, name=f"dropout_{i}"))
    loss: str | keras.losses.Loss = "sparse_categorical_crossentropy"
    metrics: list = ["accuracy"]
    if task is CLASSIFICATION:
        model.add(keras.layers.Dense(n_classes, activation="softmax", name="output", **init))
        if params.label_smoothing:
            loss = SparseSmoothedCrossentropy(params.label_smoothing, n_classes)
    else:
        mean, std = target_stats if target_stats is not None else (0.0, 1.0)
        model.add(keras.layers.Dense(1, name="output", **init))
        model.add(keras.layers.Rescaling(scale=std, offset=mean, name="target_scale"))
        loss = "mean_squared_error"
        metrics = [
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae"),
        ]
    model.compile(
        optimizer=optimizer
        or make_optimizer(
            params.optimizer, learning_rate_of(params, decay_steps), params.weight_decay
        ),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
