"""The documented baselines: every figure of baselines.md with its source and configuration.

Each `Baseline` is both a figure to show beside the service's results ("documented") and, where
the source describes enough, a configuration the service can train under its own harness
("reproduced"). Whatever a source leaves out stays None (or NOT_STATED) here; every choice the
reproduction has to make on its own is spelled out in `Baseline.assumptions`.

Importing this module is cheap: keras is imported only when a model is built.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.params import ACTIVATIONS, OPTIMIZERS, ModelParams
from search.errors import UsageError

if TYPE_CHECKING:
    import keras

NOT_STATED = "not stated"

DATASETS = ("fashion", "mnist")
KINDS = ("shallow", "dense", "reference")
# "adam-shallow" is the shallow study's Adam(1e-4, epsilon=1e-4), built inside build_shallow.
BASELINE_OPTIMIZERS = ("adam-shallow", *OPTIMIZERS)
FIGURES = ("test_accuracy", "test_loss", "precision", "recall")

# Keras' documented defaults, written out so that a later Keras release changing a default cannot
# silently change a baseline (the sources ran older Keras versions with these values).
_DEFAULT_LEARNING_RATE = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 0.01}
_KERAS_DEFAULT_BATCH = 32
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
        if set(self.documented) != set(FIGURES):
            raise ValueError(f"{where}: documented needs exactly the keys {FIGURES}")
        if len(self.units) != len(self.dropouts):
            raise ValueError(f"{where}: give one dropout rate per hidden layer")
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


def _figures(
    test_accuracy: Figure = None,
    test_loss: Figure = None,
    precision: Figure = None,
    recall: Figure = None,
) -> dict[str, Figure]:
    """The documented-figures dict; every key present, None where the source states nothing."""
    return {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "precision": precision,
        "recall": recall,
    }


# Assumption texts shared by several entries, so reports can group identical ones.
_BATCH_NOT_STATED = f"batch size not stated: Keras default {_KERAS_DEFAULT_BATCH}"
_NO_SCALING_STATED = "pixels scaled to [0, 1] although the source mentions no scaling"
_VALIDATION_UNSTATED = "validation split: the service's fixed 10% (the source states no size)"
_ONE_HOT = (
    "integer labels with sparse categorical cross-entropy instead of the documented one-hot "
    "labels with categorical cross-entropy (the same loss)"
)

# --- Fashion-MNIST -------------------------------------------------------------------------

_ALEXNET = Baseline(
    id="FM-ALEXNET",
    dataset="fashion",
    source=(
        'Ma, Li, Xia, Zhang, "Autonomous deep learning: a genetic DCNN designer for image '
        'classification", Neurocomputing 379 (2020) 152-161'
    ),
    kind="reference",
    units=(),
    dropouts=(),
    activation=None,
    reproduce_activation=NOT_STATED,
    optimizer=NOT_STATED,
    # The field is an int; a reference figure is never trained, so 32 is only a placeholder.
    batch_size=_KERAS_DEFAULT_BATCH,
    epochs=None,
    patience=None,
    documented=_figures(test_accuracy=0.8643),
    documented_epochs=None,
    n_params=61_000_000,
    assumptions=(f"{_BATCH_NOT_STATED} (a placeholder: a reference figure is never trained)",),
    note=(
        "AlexNet (Krizhevsky et al. 2012), about 61M parameters: a convolutional net on 256x256 "
        "RGB input, not reproduced here; the bar the shallow-network study set out to reach"
    ),
)

_SHALLOW_SOURCE = (
    'A. H. Uddin, "Fine-Tuning Shallow Networks with Keras for Efficient Image Classification"'
)
_SHALLOW_NOTE = (
    "per-pixel Dense layers before Flatten; the best-val_loss checkpoint is reloaded for the "
    "test evaluation"
)
_SHALLOW_ASSUMPTIONS = (
    _ONE_HOT,
    "validation: the service's fixed, seeded 10% split (the source: validation_split 0.1 with "
    "shuffling)",
)
_SHALLOW_ACTIVATION_NOT_STATED = (
    "activation not stated: relu assumed (the study's grid offered none and relu)"
)


# baselines.md: "about 3M" trainable parameters for n = 392, L = 1 (no figure for L = 2).
_ABOUT_3M = 3_000_000


def _shallow(
    id_: str,
    n_layers: int,
    units: int,
    dropout: float,
    activation: str | None,
    documented: dict[str, Figure],
    *,
    documented_epochs: int | None = None,
) -> Baseline:
    """One row of the FM-SHALLOW table; everything else is the study's common setup."""
    assumptions = _SHALLOW_ASSUMPTIONS
    if activation is None:
        assumptions = (_SHALLOW_ACTIVATION_NOT_STATED, *assumptions)
    documented_count = n_layers == 1 and units == 392
    note = _SHALLOW_NOTE
    if documented_count:
        note += "; n_params is the documented 'about 3M' for n = 392, L = 1"
    return Baseline(
        id=id_,
        dataset="fashion",
        source=_SHALLOW_SOURCE,
        kind="shallow",
        units=(units,) * n_layers,
        dropouts=(dropout,) * n_layers,
        activation=activation,
        reproduce_activation=activation or "relu",
        optimizer="adam-shallow",
        batch_size=128,
        epochs=3000,
        patience=50,
        documented=documented,
        documented_epochs=documented_epochs,
        n_params=_ABOUT_3M if documented_count else None,
        assumptions=assumptions,
        note=note,
    )


# Columns: id, L, n, d, act ("linear" for the table's "none"; None for "not stated"), figures.
_FM_SHALLOW = (
    _shallow("FM-SHALLOW-392-relu-d0.5", 1, 392, 0.5, "relu", _figures(0.862, 0.39)),
    _shallow("FM-SHALLOW-392-none-d0.5", 1, 392, 0.5, "linear", _figures(0.8469)),
    _shallow(
        "FM-SHALLOW-392-none-d0.8",
        1,
        392,
        0.8,
        "linear",
        _figures(0.8636, 0.38, 0.8877, 0.8455),
        documented_epochs=377,
    ),
    _shallow(
        "FM-SHALLOW-392-relu-d0.8",
        1,
        392,
        0.8,
        "relu",
        _figures(0.8445, 0.44, 0.8755, 0.8152),
        documented_epochs=68,
    ),
    _shallow("FM-SHALLOW-2x78-d0.5", 2, 78, 0.5, None, _figures(0.8671, 0.3691, 0.89, 0.8472)),
    _shallow("FM-SHALLOW-2x392-d0.5", 2, 392, 0.5, None, _figures(0.8666, 0.3721, 0.8887, 0.8491)),
)

_FM_MLP128 = Baseline(
    id="FM-MLP128",
    dataset="fashion",
    source='blog "Designing Dense Neural Networks: Lessons from Fashion MNIST"',
    kind="dense",
    units=(128,),
    dropouts=(0.0,),
    activation="relu",
    reproduce_activation="relu",
    optimizer="adam",
    batch_size=_KERAS_DEFAULT_BATCH,
    epochs=10,
    patience=None,
    documented=_figures(),
    documented_epochs=None,
    n_params=None,
    assumptions=(
        _BATCH_NOT_STATED,
        _NO_SCALING_STATED,
        "validation split: the service's fixed 10% instead of the documented 0.2",
    ),
    note="test accuracy not stated: the reproduction supplies the figure",
)

# --- MNIST digits ----------------------------------------------------------------------------

_SIGMOID_SOURCE = (
    'T. E. Bettilyon, "How to classify MNIST digits with different neural network architectures"'
)
_SIGMOID_ASSUMPTIONS = (_NO_SCALING_STATED, _VALIDATION_UNSTATED, _ONE_HOT)


def _sigmoid(
    id_: str,
    units: tuple[int, ...],
    accuracy: Figure,
    *,
    epochs: int | None = 5,
    batch_size: int = 128,
    n_params: int | None = None,
    note: str = "",
) -> Baseline:
    """One row of the MN-SIGMOID table: sigmoid layers, SGD (Keras defaults), no dropout."""
    return Baseline(
        id=id_,
        dataset="mnist",
        source=_SIGMOID_SOURCE,
        kind="dense",
        units=units,
        dropouts=(0.0,) * len(units),
        activation="sigmoid",
        reproduce_activation="sigmoid",
        optimizer="sgd",
        batch_size=batch_size,
        epochs=epochs,
        patience=None,
        documented=_figures(accuracy),
        documented_epochs=None,
        n_params=n_params,
        assumptions=_SIGMOID_ASSUMPTIONS,
        note=note,
    )


_MN_SIGMOID = (
    _sigmoid(
        "MN-SIGMOID-1x32",
        (32,),
        (0.87, 0.888),
        n_params=25_450,
        note="test accuracy 0.87 to 0.888 over runs",
    ),
    _sigmoid("MN-SIGMOID-2x32", (32, 32), 0.767),
    _sigmoid("MN-SIGMOID-3x32", (32,) * 3, 0.438),
    _sigmoid("MN-SIGMOID-4x32", (32,) * 4, 0.114),
    _sigmoid("MN-SIGMOID-3x32-e40", (32,) * 3, 0.886, epochs=40),
    _sigmoid("MN-SIGMOID-1x64", (64,), 0.904),
    _sigmoid("MN-SIGMOID-1x128", (128,), 0.916),
    _sigmoid("MN-SIGMOID-1x256", (256,), 0.926),
    _sigmoid("MN-SIGMOID-1x512", (512,), 0.934),
    _sigmoid("MN-SIGMOID-1x2048", (2048,), 0.950),
    _sigmoid(
        "MN-SIGMOID-1x512-long",
        (512,),
        0.947,
        epochs=None,
        note=(
            "trained for more epochs (number not stated); 0.947 is the best of depths 1-5 x "
            "widths {32, 128, 512}. Not reproducible without the epoch count"
        ),
    ),
    _sigmoid("MN-SIGMOID-5x32-b16", (32,) * 5, 0.827, epochs=50, batch_size=16),
)

_MN_MLP512 = Baseline(
    id="MN-MLP512",
    dataset="mnist",
    source=(
        'Keras\' mnist_mlp example (walk-through "Neural network dense layers"; the figure is '
        "the Keras example's)"
    ),
    kind="dense",
    units=(512, 512),
    dropouts=(0.2, 0.2),
    activation="relu",
    reproduce_activation="relu",
    optimizer="rmsprop",
    batch_size=128,
    epochs=20,
    patience=None,
    documented=_figures(0.984),
    documented_epochs=None,
    n_params=669_706,
    assumptions=(_VALIDATION_UNSTATED, _ONE_HOT),
    note=(
        "the walk-through states no figure; 0.984 is Keras' mnist_mlp example's 'about 98.40%' "
        "after 20 epochs"
    ),
)

BASELINES: tuple[Baseline, ...] = (
    _ALEXNET,
    *_FM_SHALLOW,
    _FM_MLP128,
    *_MN_SIGMOID,
    _MN_MLP512,
)

_BY_ID = {baseline.id: baseline for baseline in BASELINES}
if len(_BY_ID) != len(BASELINES):
    raise RuntimeError("two documented baselines share an id")


def for_dataset(dataset: str) -> tuple[Baseline, ...]:
    """Every documented entry for one dataset, in the order of baselines.md."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {DATASETS}")
    return tuple(b for b in BASELINES if b.dataset == dataset)


def get(baseline_id: str) -> Baseline:
    """The entry with this id; KeyError naming close matches (ids are case-sensitive)."""
    try:
        return _BY_ID[baseline_id]
    except KeyError:
        close = difflib.get_close_matches(baseline_id, _BY_ID, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known ids: {', '.join(_BY_ID)}"
        raise KeyError(f"no documented baseline {baseline_id!r}; {hint}") from None


def reproduction_set(dataset: str) -> tuple[Baseline, ...]:
    """What the baseline study trains for a dataset: every entry the service can reproduce.

    fashion: the FM-SHALLOW rows and FM-MLP128; mnist: the MN-SIGMOID rows with a stated epoch
    count and MN-MLP512.
    """
    return tuple(b for b in for_dataset(dataset) if b.reproducible)


def select_for_reproduction(
    dataset: str, baseline_ids: Sequence[str] | None = None
) -> tuple[Baseline, ...]:
    """The entries a baselines run trains: `reproduction_set`, or only the given ids of it.

    Kept in the order of baselines.md whatever order the ids come in. A UsageError (exit status
    2, before anything is stored) for an id that is unknown, of the other dataset, or not
    reproducible.
    """
    available = reproduction_set(dataset)
    if not baseline_ids:
        return available
    wanted = set(baseline_ids)
    for baseline_id in baseline_ids:
        try:
            baseline = get(baseline_id)
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
        if baseline.dataset != dataset:
            raise UsageError(
                f"baseline {baseline_id} is a {baseline.dataset} baseline, not {dataset}"
            )
        if not baseline.reproducible:
            why = "a reference figure" if baseline.kind == "reference" else "its epochs not stated"
            raise UsageError(
                f"baseline {baseline_id} cannot be reproduced ({why}); reproducible {dataset} "
                f"ids: {', '.join(b.id for b in available)}"
            )
    return tuple(b for b in available if b.id in wanted)


def best_documented(dataset: str) -> Baseline:
    """The entry with the highest documented test accuracy (a range counts by its upper end)."""
    stated = [b for b in for_dataset(dataset) if b.best_documented_accuracy() is not None]
    if not stated:
        raise ValueError(f"no documented test accuracy for {dataset!r}")
    return max(stated, key=lambda b: b.best_documented_accuracy())
