"""One documented baseline: the `Baseline` record, its checks, its size and its Keras network.

Each `Baseline` is both a figure to show beside the service's results ("documented") and, where
the source describes enough, a configuration the service can train under its own harness
("reproduced"). Whatever a source leaves out stays None (or NOT_STATED) here; every choice the
reproduction has to make on its own is spelled out in `Baseline.assumptions`. The entries
themselves are data (baselines.toml, read by `baseline_file`; looked up through `baselines`).

Importing this module is cheap: keras is imported only when a model is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.params import ACTIVATIONS, OPTIMIZERS, ModelParams

if TYPE_CHECKING:
    import keras

NOT_STATED = "not stated"

DATASETS = ("fashion", "mnist")
KINDS = ("shallow", "dense", "reference")
# "adam-shallow" is the shallow study's Adam(1e-4, epsilon=1e-4), built inside build_shallow.
BASELINE_OPTIMIZERS = ("adam-shallow", *OPTIMIZERS)
FIGURES = ("test_accuracy", "test_loss", "precision", "recall")
# Figures stated as percentages in the sources and stored as fractions; a value above 1 here is
# almost certainly a percentage typed as printed.
_FRACTION_FIGURES = ("test_accuracy", "precision", "recall")

# Keras' documented defaults, written out so that a later Keras release changing a default cannot
# silently change a baseline (the sources ran older Keras versions with these values).
_DEFAULT_LEARNING_RATE = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 0.01}
_SHALLOW_LEARNING_RATE = 1e-4

Figure = float | tuple[float, float] | None


@dataclass(frozen=True)
class Baseline:
    """One documented configuration and its test-set figures, as baselines.md states them."""

    id: str
    dataset: str  # "fashion" or "mnist"
    source: str  # short citation: author and title
    kind: str  # "shallow" (per-pixel net), "dense" (flatten-first MLP) or "reference"
    units: tuple[int, ...]  # hidden layer widths; empty for a reference figure
    dropouts: tuple[float, ...]  # one per hidden layer; 0.0 where the source has no dropout
    activation: str | None  # as documented ("linear" for "none"); None when not stated
    reproduce_activation: str  # what a reproduction uses; NOT_STATED for a reference figure
    optimizer: str  # one of BASELINE_OPTIMIZERS; NOT_STATED for a reference figure
    batch_size: int  # Keras' default 32 where not stated (then listed in assumptions)
    epochs: int | None  # documented (maximum) epochs; None when not stated
    patience: int | None  # EarlyStopping patience on val_loss; None: a fixed number of epochs
    # FIGURES -> fraction (0.862 for 86.20%), loss as printed, a (low, high) range, or None.
    # hash=False keeps the frozen object hashable despite the dict.
    documented: dict[str, Figure] = field(hash=False)
    documented_epochs: int | None  # epochs the documented run actually took, where given
    n_params: int | None  # documented parameter count ("about 61M" -> 61_000_000)
    assumptions: tuple[str, ...]  # every choice of the reproduction the source does not state
    note: str = ""

    def __post_init__(self) -> None:
        # Tuples, not lists, so entries stay immutable and comparable.
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        object.__setattr__(self, "dropouts", tuple(float(d) for d in self.dropouts))
        object.__setattr__(self, "assumptions", tuple(self.assumptions))
        # A typo in a transcribed entry must fail at import, not in a report hours later.
        where = f"baseline {self.id}"
        if self.dataset not in DATASETS:
            raise ValueError(f"{where}: unknown dataset {self.dataset!r}; use one of {DATASETS}")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {self.kind!r}; use one of {KINDS}")
        unknown = [name for name in self.documented if name not in FIGURES]
        if unknown:
            raise ValueError(
                f"{where}: unknown documented figure {', '.join(map(repr, unknown))}; "
                f"use {', '.join(FIGURES)}"
            )
        missing = [name for name in FIGURES if name not in self.documented]
        if missing:
            raise ValueError(f"{where}: documented lacks {', '.join(missing)} (None: not stated)")
        for name, value in self.documented.items():
            _check_figure(where, name, value)
        if len(self.units) != len(self.dropouts):
            raise ValueError(
                f"{where}: units has {len(self.units)} layers but dropouts "
                f"{len(self.dropouts)} rates; give one dropout rate per hidden layer"
            )
        if any(units < 1 for units in self.units):
            raise ValueError(f"{where}: hidden layer widths must be positive, got {self.units}")
        if any(not 0.0 <= rate < 1.0 for rate in self.dropouts):
            raise ValueError(f"{where}: dropout rates must lie in [0, 1), got {self.dropouts}")
        if self.batch_size < 1:
            raise ValueError(f"{where}: batch_size must be positive, got {self.batch_size}")
        for name in ("epochs", "documented_epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{where}: {name} must be positive where stated, got {value}")
        if self.patience is not None and self.patience < 0:
            raise ValueError(f"{where}: patience must not be negative, got {self.patience}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"{where}: unknown activation {self.activation!r}")
        if self.kind == "reference":
            if self.units:
                raise ValueError(f"{where}: a reference figure has no layers to build")
            return
        if not self.units:
            raise ValueError(f"{where}: a reproducible entry needs at least one hidden layer")
        if self.reproduce_activation not in ACTIVATIONS:
            raise ValueError(f"{where}: reproduce_activation must be one of {ACTIVATIONS}")
        if self.activation is not None and self.reproduce_activation != self.activation:
            raise ValueError(f"{where}: reproduce_activation differs from the documented one")
        if self.activation is None and not any("activation" in a for a in self.assumptions):
            raise ValueError(f"{where}: activation not stated; say what is assumed instead")
        if (self.kind == "shallow") != (self.optimizer == "adam-shallow"):
            raise ValueError(f"{where}: 'adam-shallow' goes with kind 'shallow', and only there")
        if self.optimizer not in BASELINE_OPTIMIZERS:
            raise ValueError(f"{where}: optimizer must be one of {BASELINE_OPTIMIZERS}")

    @property
    def reproducible(self) -> bool:
        """Whether the service can train it: a buildable network and a known number of epochs."""
        return self.kind != "reference" and self.epochs is not None

    def best_documented_accuracy(self) -> float | None:
        """The documented test accuracy; for a range over runs, its upper end."""
        accuracy = self.documented["test_accuracy"]
        if isinstance(accuracy, tuple):
            return accuracy[1]
        return accuracy

    def param_count(
        self, input_shape: tuple[int, ...] = (28, 28, 1), n_classes: int = 10
    ) -> int | None:
        """Trainable parameters: exact from the layer sizes where buildable, else `n_params`.

        Arithmetic, not a built model, so a report can size all entries without keras; the exact
        figure beats a rounded documented one ("about 3M") on a plot.
        """
        if self.kind == "reference":
            return self.n_params
        if self.kind == "shallow":
            # Dense layers act on the last axis only; Flatten then sees every position's features.
            width, positions = input_shape[-1], math.prod(input_shape[:-1])
        else:
            width, positions = math.prod(input_shape), 1
        count = 0
        for units in self.units:
            count += width * units + units
            width = units
        return count + positions * width * n_classes + n_classes

    def build(self, input_shape: tuple[int, ...] = (28, 28, 1), n_classes: int = 10) -> keras.Model:
        """A compiled model (sparse categorical cross-entropy, metrics=["accuracy"]) of this entry.

        Integer labels with sparse categorical cross-entropy give the same loss as the sources'
        one-hot labels with categorical cross-entropy.
        """
        if self.kind == "reference":
            raise ValueError(
                f"baseline {self.id} is a reference figure only ({self.note or self.source}); "
                "there is no network to build"
            )
        import models

        if self.kind == "shallow":
            # build_shallow takes None for linear and already uses the documented Adam.
            activation = (
                None if self.reproduce_activation == "linear" else self.reproduce_activation
            )
            return models.build_shallow(
                self.units,
                self.dropouts,
                activation,
                input_shape=input_shape,
                n_classes=n_classes,
                learning_rate=_SHALLOW_LEARNING_RATE,
            )
        params = ModelParams(
            units=self.units,
            dropouts=self.dropouts,
            activation=self.reproduce_activation,
            learning_rate=_DEFAULT_LEARNING_RATE[self.optimizer],
            optimizer=self.optimizer,
            batch_size=self.batch_size,
        )
        return models.build_dense(
            params, input_shape, n_classes, optimizer=_keras_default_optimizer(self.optimizer)
        )


def _check_figure(where: str, name: str, value: Figure) -> None:
    """A documented figure is None, a number or a (low, high) range; fractions stay in [0, 1]."""
    if value is None:
        return
    bounds = value if isinstance(value, tuple) else (value, value)
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        raise ValueError(f"{where}: documented {name} range must be (low, high), got {value}")
    if name in _FRACTION_FIGURES and not all(0.0 <= bound <= 1.0 for bound in bounds):
        raise ValueError(
            f"{where}: documented {name} {value} is not a fraction (write 86.20% as 0.862)"
        )
    if bounds[0] < 0.0:
        raise ValueError(f"{where}: documented {name} must not be negative, got {value}")


def _keras_default_optimizer(name: str) -> keras.optimizers.Optimizer:
    """The sources' "Keras defaults"; unlike the search's make_optimizer, SGD has no momentum."""
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate=_DEFAULT_LEARNING_RATE["adam"])
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=_DEFAULT_LEARNING_RATE["rmsprop"])
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=_DEFAULT_LEARNING_RATE["sgd"], momentum=0.0)
    raise ValueError(f"no Keras-default optimizer for {name!r}; use one of {OPTIMIZERS}")
