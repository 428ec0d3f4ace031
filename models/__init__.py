"""Keras networks built from plain sizes. Nothing here imports optuna.

`ModelParams` is a frozen, validated description of one dense network and its training knobs;
`build_dense` turns it into a compiled flatten-first MLP, `build_shallow` into the per-pixel
"shallow DenseNet" of the documented baselines.
"""

import math
import os

# Before TensorFlow is first imported: the TensorFlow backend, and no C++ info chatter.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from models.params import ACTIVATIONS, OPTIMIZERS, ModelParams

__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "ModelParams",
    "build_dense",
    "build_shallow",
    "trainable_params",
]


def build_dense(*args, **kwargs):
    """Lazy import: `models.params` must stay importable without TensorFlow (fast CLI start)."""
    from models.dense import build_dense as _build

    return _build(*args, **kwargs)


def build_shallow(*args, **kwargs):
    """Lazy import, see `build_dense`."""
    from models.shallow import build_shallow as _build

    return _build(*args, **kwargs)


def trainable_params(model) -> int:
    """A network's size: its trainable parameters, as the documented baselines count them and
    as --pareto minimises them. Not counted: batch normalisation's moving mean and variance,
    statistics that are not learned (and fold into the neighbouring dense layer when the
    network is deployed); Keras' count_params() counts them."""
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))
