"""The search's data: a fixed, seeded validation split of the training file; and the test set.

The search only ever sees the training file, split 90/10; the test file is read only by
`load_test`, which the retrain/evaluation stage calls. Labels of any type are mapped to class ids
(in sorted order; `Split.classes` maps them back); tables are encoded by a FeatureSpace fitted on
the training part alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.data.arrays import read_npz
from search.data.idx import read_part
from search.data.locate import load_part
from search.data.source import DataSource
from search.errors import DataError

MIN_VALIDATION = 5  # examples the validation split needs at the least
STD_FLOOR_OF_RANGE = 10  # standardisation: a feature's std counts as at least range / this


@dataclass(frozen=True)
class Split:
    """Inputs as float32, one row per example (images: (n, 28, 28, 1) in [0, 1]); labels as
    class ids 0..n_classes-1, `classes[i]` being the label the data file gave class i."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    source: str  # where the files came from, for the study's attributes
    classes: tuple[Any, ...] = tuple(range(10))
    encoder: Any = None  # tables: the fitted keras.utils.FeatureSpace, saved with every model
    columns: tuple[str, ...] | None = None  # tables: the feature columns, in the file's order
    task: str = "classification"  # or "regression": labels are then float32 targets

    @property
    def target_stats(self) -> tuple[float, float]:
        """Regression: mean and standard deviation of the training targets (never validation)."""
        std = float(np.std(self.y_train))
        return float(np.mean(self.y_train)), std if std > 0 else 1.0

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @functools.cached_property
    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of each input feature over the training part (never validation):
        what input standardisation uses. Computed once per process.

        A feature's standard deviation counts as at least a tenth of its range in the training
        part, and a feature constant there is left unscaled (variance 1): Keras divides by
        max(std, 1e-7), so an MNIST border pixel that is blank in every training image (67 of
        784 are) but inked in a validation image became a value near 10^6, and one inked in a
        handful of training images a value in the hundreds. A feature spread like a normal
        sample is not touched (its std is about range / 9 at this sample size)."""
        flat = self.x_train.reshape(len(self.x_train), -1)
        mean, variance = flat.mean(axis=0, dtype=np.float64), flat.var(axis=0, dtype=np.float64)
        spread = np.ptp(flat, axis=0).astype(np.float64)
        floored = np.maximum(variance, (spread / STD_FLOOR_OF_RANGE) ** 2)
        return mean, np.where(spread > 0, floored, 1.0)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def _source(source: DataSource | str, data_dir: str | None) -> DataSource:
    return (
        source if isinstance(source, DataSource) else DataSource(builtin=source, data_dir=data_dir)
    )


def class_ids(labels: np.ndarray, where: str, classes: tuple[Any, ...] | None = None):
    """(ids, classes): labels mapped to 0..k-1 in sorted order, or by the given `classes`."""
    values = np.asarray(labels)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise DataError(f"{where}: {bad} labels are NaN or infinite; remove or fill those rows")
    if classes is None:
        found = np.unique(values)
        if len(found) < 2:
            raise DataError(
                f"{where}: the target has a single class ({found[0] if len(found) else 'none'}"
                "); classification needs at least two"
            )
        classes = tuple(v.item() if hasattr(v, "item") else v for v in found)
    lookup = {value: index for index, value in enumerate(classes)}
    try:
        ids = np.array([lookup[v.item() if hasattr(v, "item") else v] for v in values])
    except KeyError as exc:
        raise DataError(
            f"{where}: label {exc.args[0]!r} does not occur in the training file; the model "
            f"knows {len(classes)} classes"
        ) from None
    return ids.astype(np.int64 if len(classes) > 255 else np.uint8), classes


def targets(labels: np.ndarray, where: str) -> np.ndarray:
    """Regression targets as float32, checked: numbers, all finite."""
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{where}: the target holds values that are not numbers; regression needs numeric "
            'targets (or set [study] task = "classification")'
        ) from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"{where}: {int(bad.sum())} targets are NaN or infinite (first at row "
            f"{int(np.nonzero(bad)[0][0]) + 1}); remove or fill those rows"
        )
    return values.astype(np.float32)


@functools.lru_cache(maxsize=4)
def load_split(
    source: DataSource | str,
    data_dir: str | None = None,
    *,
    task: str = "classification",
    val_fraction: float = 0.1,
    split_seed: int = 0,
    limit_train: int | None = None,
) -> Split:
    """The search's data: a seeded split of the training file. Cached: loaded once per process.

    `source` is a DataSource, or a built-in dataset's name with `data_dir` its folder. With
    `limit_train`, a seeded subset of that many training-file examples is split instead (quick
    runs and tests); the validation share is the same fraction of it.
    """
    source = _source(source, data_dir)
    x, labels, where, table = _read(source, "train")
    order = np.random.default_rng(split_seed).permutation(len(labels))
    if limit_train is not None:
        order = order[: min(limit_train, len(order))]
    n_val = max(1, round(len(order) * val_fraction))
    if n_val < MIN_VALIDATION or len(order) - n_val < MIN_VALIDATION:
        raise DataError(
            f"{where}: {len(order)} examples leave {n_val} for validation and "
            f"{len(order) - n_val} for training; each needs at least {MIN_VALIDATION} "
            "(add rows, or change [data] val_fraction)"
        )
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if source.kind == "builtin":
        y, classes = labels, tuple(range(10))
    elif task == "regression":
        y, classes = targets(labels, where), ()
    else:
        y, classes = class_ids(labels, where)
    encoder = None
    if table is not None:  # a CSV or Parquet table: encoded by a FeatureSpace fit on train rows
        from search.data.tables import encode, fit_encoder

        encoder = fit_encoder(table.iloc[train_idx])
        x_train, x_val = (
            encode(encoder, table.iloc[train_idx]),
            encode(encoder, table.iloc[val_idx]),
        )
    else:
        x_train, x_val = x[train_idx], x[val_idx]
    return Split(
        x_train=x_train,
        y_train=y[train_idx].copy(),
        x_val=x_val,
        y_val=y[val_idx].copy(),
        source=where,
        classes=classes,
        encoder=encoder,
        columns=None if table is None else tuple(map(str, table.columns)),
        task=task,
    )


def load_test(
    source: DataSource | str, data_dir: str | None = None, *, split: Split | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The test set, for the retrain/evaluation stage only (never for the search); a user's
    file is encoded and labelled as `split` (its FeatureSpace and classes)."""
    source = _source(source, data_dir)
    if not source.has_test:
        raise DataError(f"{source.name}: no test file ([data] test in the study file)")
    x, labels, where, table = _read(source, "test")
    if source.kind == "builtin":
        return x, labels.copy()
    if split is None:
        raise ValueError("a user's test file is encoded as its split: pass split=")
    if table is not None:
        from search.data.tables import check_same_columns

        check_same_columns(list(split.columns), list(map(str, table.columns)), Path(where))
    if split.task == "regression":
        y = targets(labels, where)
    else:
        y, _ = class_ids(labels, where, split.classes)
    if table is not None:
        from search.data.tables import encode

        x = encode(split.encoder, table)
    elif x.shape[1:] != split.input_shape:
        raise DataError(
            f"{where}: inputs of shape {x.shape[1:]}, but the training file's are "
            f"{split.input_shape}; give both files the same input shape"
        )
    return x, y


def _read(source: DataSource, part: str) -> tuple[Any, np.ndarray, str, Any]:
    """(inputs, raw labels, where they came from, the feature table or None) of one part."""
    if source.kind == "builtin":
        images, labels, where = load_part(source.builtin, source.data_dir, part)
        return to_float(images), labels, where, None
    path = Path(source.train if part == "train" else source.test)
    if source.kind == "idx":
        images, labels = read_part(path, part)
        return to_float(images), labels, str(path), None
    if source.kind == "npz":
        x, y = read_npz(path, part)
        return x, y, str(path), None
    from search.data.tables import read_table

    features, target = read_table(path, source.kind, source.target, part)
    return None, target.to_numpy(), str(path), features
