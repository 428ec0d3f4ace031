"""CSV and Parquet tables: read by pandas, checked, and encoded by Keras' FeatureSpace.

Numeric (and boolean) columns are standardised, text columns become one-hot categories (an
unseen category gets its own slot). The FeatureSpace is fitted on the training part of the split
only, and saved in front of every retrained model, so a saved model scores raw rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from search.errors import DataError

ENCODE_BATCH = 4096


def read_table(path: Path, kind: str, target: str, part: str) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns and the target column of one CSV or Parquet file, checked."""
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(
            f"data file {path} is missing; check [data] {part} in the study file"
        ) from None
    except (OSError, ValueError, pd.errors.ParserError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"data file {path} cannot be read as {kind.upper()} ({first})") from None
    if target not in frame.columns:
        raise DataError(
            f"data file {path} has no target column {target!r}; its columns are "
            f"{', '.join(map(str, frame.columns))} (set [data] target to one of them)"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"data file {path} has no column besides the target {target!r}")
    _check_values(path, frame, target)
    return features, frame[target]


def _check_values(path: Path, frame: pd.DataFrame, target: str) -> None:
    """No missing or infinite value, and every column numeric, boolean or text."""
    problems = []
    for name, column in frame.items():
        missing = int(column.isna().sum())
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            missing += int(np.isinf(column.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
        elif not (pd.api.types.is_bool_dtype(column) or _is_text(column)):
            raise DataError(
                f"data file {path}: column {name!r} holds {column.dtype} values that cannot be "
                "encoded; use numbers, true/false or text"
            )
        if missing:
            rows = np.nonzero(column.isna().to_numpy())[0]
            first = f", first at row {int(rows[0]) + 1}" if len(rows) else ""
            problems.append(f"{name!r}: {missing}{first}")
    if problems:
        raise DataError(
            f"data file {path}: missing (NaN) or infinite values in column "
            f"{'; '.join(problems)}; remove or fill those rows"
            + (
                " (the target included)"
                if any(p.startswith(repr(target)) for p in problems)
                else ""
            )
        )


def _is_text(column: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(column):
        return True
    return column.dtype == object and all(isinstance(v, str) for v in column.dropna())


def check_same_columns(train: list[str], test: list[str], test_path: Path) -> None:
    """The test file's feature columns are the training file's, in the same order."""
    if train != test:
        extra = [c for c in test if c not in train]
        lacking = [c for c in train if c not in test]
        detail = "; ".join(
            part
            for part in (
                f"not in the training file: {', '.join(extra)}" if extra else "",
                f"missing: {', '.join(lacking)}" if lacking else "",
                "same columns in another order" if not (extra or lacking) else "",
            )
            if part
        )
        raise DataError(
            f"test file {test_path} has other columns than the training file ({detail}); "
            "give both files the same columns"
        )


def input_names(columns) -> dict[str, str]:
    """Column name -> the model's input name: Keras names allow no '/' or spaces, so any
    character but a letter, digit, '_', '-' or '.' becomes '_' (made unique)."""
    names: dict[str, str] = {}
    for column in columns:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(column)) or "column"
        while name in names.values():
            name += "_"
        names[str(column)] = name
    return names


def _inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Column arrays as the FeatureSpace (and a saved model) takes them: float32 or text."""
    names = input_names(frame.columns)
    return {
        names[str(name)]: column.to_numpy(dtype=object).astype(str)
        if _is_text(column)
        else column.to_numpy(dtype=np.float32)
        for name, column in frame.items()
    }


def fit_encoder(train: pd.DataFrame) -> Any:
    """A keras.utils.FeatureSpace fitted on the training part's rows (never validation or test)."""
    import tensorflow as tf
    from keras.utils import FeatureSpace

    names = input_names(train.columns)
    features = {
        names[str(name)]: FeatureSpace.string_categorical(num_oov_indices=1)
        if _is_text(column)
        else FeatureSpace.float_normalized()
        for name, column in train.items()
    }
    space = FeatureSpace(features=features, output_mode="concat")
    space.adapt(tf.data.Dataset.from_tensor_slices(_inputs(train)).batch(ENCODE_BATCH))
    return space


def encode(encoder: Any, frame: pd.DataFrame) -> np.ndarray:
    """Rows through the fitted FeatureSpace: a float32 matrix, one row per example."""
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices(_inputs(frame)).batch(ENCODE_BATCH)
    return np.concatenate([np.asarray(encoder(batch), dtype=np.float32) for batch in batches])
