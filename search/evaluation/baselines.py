"""The documented baselines: the `Baseline` record, its checks, and lookups over baselines.toml.

The figures and configurations of ../shared/docs/baselines.md are data, kept in baselines.toml
beside this module (shipped as package data). This module reads that file once at import, turns
every [[baseline]] table into a `Baseline` and checks it, so a typo in the file (an unknown key,
dataset or activation, one dropout rate too few) stops the import with the entry's id and the
problem instead of surfacing in a report hours later.

Each `Baseline` is both a figure to show beside the service's results ("documented") and, where
the source describes enough, a configuration the service can train under its own harness
("reproduced"). Whatever a source leaves out stays None (or NOT_STATED) here; every choice the
reproduction has to make on its own is spelled out in `Baseline.assumptions`.

Importing this module is cheap: keras is imported only when a model is built.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

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


# --- reading baselines.toml ----------------------------------------------------------------------
# The loader checks what TOML can get wrong (unknown or missing keys, a value of the wrong type)
# and converts arrays to tuples; what the values mean is checked by Baseline.__post_init__.

DATA_FILE = "baselines.toml"
_PACKAGE = __name__.rpartition(".")[0]

# Keys every [[baseline]] table must give.
_REQUIRED_KEYS = ("id", "dataset", "source", "kind", "units", "dropouts", "batch_size")
# Every other key may be left out: the source does not state it (see the file's header). The
# value a left-out key stands for:
_LEFT_OUT: dict[str, Any] = {
    "activation": None,
    "reproduce_activation": NOT_STATED,
    "optimizer": NOT_STATED,
    "epochs": None,
    "patience": None,
    "documented": {},
    "documented_epochs": None,
    "n_params": None,
    "assumptions": (),
    "note": "",
}


# A converter takes (where, key, value): `where` and `key` name the entry and key in its errors.
_Converter = Callable[[str, str, object], Any]


def _string(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _integer(where: str, key: str, value: object) -> int:
    # bool is an int in Python; `epochs = true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _number(where: str, key: str, value: object) -> float:
    # TOML reads `0` as an integer; a rate or a figure written so is still meant as a float.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _array(where: str, key: str, value: object, item: _Converter) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} must be an array, got {value!r}")
    return tuple(item(where, f"{key}[{i}]", element) for i, element in enumerate(value))


def _figure(where: str, key: str, value: object) -> Figure:
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError(f"{where}: {key} as a range is [low, high], got {value!r}")
        low, high = _array(where, key, value, _number)
        return (low, high)
    return _number(where, key, value)


def _figures(where: str, key: str, value: object) -> dict[str, Figure]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} must be a table of figures, got {value!r}")
    # An unknown name is kept so that __post_init__ names it; _entry adds the figures left out.
    return {name: _figure(where, f"{key}.{name}", figure) for name, figure in value.items()}


# Every key a [[baseline]] table may hold (exactly Baseline's fields), with its TOML type check.
_CONVERTERS: dict[str, _Converter] = {
    "id": _string,
    "dataset": _string,
    "source": _string,
    "kind": _string,
    "units": lambda where, key, value: _array(where, key, value, _integer),
    "dropouts": lambda where, key, value: _array(where, key, value, _number),
    "activation": _string,
    "reproduce_activation": _string,
    "optimizer": _string,
    "batch_size": _integer,
    "epochs": _integer,
    "patience": _integer,
    "documented": _figures,
    "documented_epochs": _integer,
    "n_params": _integer,
    "assumptions": lambda where, key, value: _array(where, key, value, _string),
    "note": _string,
}


def _entry(table: object, position: int) -> Baseline:
    """One [[baseline]] table (the `position`-th of the file) as a checked Baseline."""
    if not isinstance(table, dict):
        raise ValueError(f"baseline #{position}: not a table")
    baseline_id = table.get("id")
    where = f"baseline {baseline_id}" if isinstance(baseline_id, str) else f"baseline #{position}"
    for key in table:
        # Refused, not ignored: a misspelt key would otherwise silently read as "not stated".
        if key not in _CONVERTERS:
            close = difflib.get_close_matches(key, _CONVERTERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}{hint}")
    missing = [key for key in _REQUIRED_KEYS if key not in table]
    if missing:
        raise ValueError(f"{where}: missing key {', '.join(map(repr, missing))}")
    values = {key: _LEFT_OUT[key] for key in _LEFT_OUT if key not in table}
    values.update({key: _CONVERTERS[key](where, key, value) for key, value in table.items()})
    # A figure left out is not stated: None, so every entry has all FIGURES keys.
    values["documented"] = {**dict.fromkeys(FIGURES), **values["documented"]}
    return Baseline(**values)


def from_document(document: Mapping[str, object], source: str = "<data>") -> tuple[Baseline, ...]:
    """The entries of a parsed baselines document (`tomllib`'s dict), checked, in its order.

    ValueError, prefixed with `source`, naming the entry (its id, else its position) and the
    problem.
    """
    try:
        unknown = [key for key in document if key != "baseline"]
        if unknown:
            raise ValueError(
                f"unknown top-level key {', '.join(map(repr, unknown))}; the file holds only "
                "[[baseline]] tables"
            )
        tables = document.get("baseline")
        if not isinstance(tables, list) or not tables:
            raise ValueError("no entries: write each one as a [[baseline]] table")
        entries = tuple(_entry(table, position) for position, table in enumerate(tables, 1))
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"baseline {entry.id}: the id is used twice")
            seen.add(entry.id)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return entries


def loads(text: str, source: str = "<string>") -> tuple[Baseline, ...]:
    """The entries of a baselines TOML text, checked, in file order (see `from_document`)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    return from_document(document, source)


def load() -> tuple[Baseline, ...]:
    """Every entry of the packaged baselines.toml, checked, in file order."""
    # importlib.resources, not a path beside __file__: the file is package data and also has to be
    # found when the package is installed from a wheel or zip.
    text = resources.files(_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return loads(text, source=f"{_PACKAGE.replace('.', '/')}/{DATA_FILE}")


# --- lookups -------------------------------------------------------------------------------------

BASELINES: tuple[Baseline, ...] = load()

_BY_ID = {baseline.id: baseline for baseline in BASELINES}


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
