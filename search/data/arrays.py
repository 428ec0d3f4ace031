"""A `.npz` of arrays: `x_train`, `y_train` and optionally `x_test`, `y_test`, of any input shape.

Read with NumPy (no pickled objects) and checked: numeric inputs, one label per example, no NaN
or infinite values. uint8 inputs (images) are scaled to [0, 1] as the built-in datasets are.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from search.errors import DataError


def read_npz(path: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as float32 and raw labels of one part ("train" or "test") of a .npz file."""
    x_key, y_key = f"x_{part}", f"y_{part}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in (x_key, y_key) if key not in archive.files]
            if missing:
                raise DataError(
                    f"data file {path} has no array {' or '.join(missing)} (it holds "
                    f"{', '.join(archive.files) or 'none'}); save it with np.savez(path, "
                    f"{x_key}=..., {y_key}=...)"
                )
            x, y = archive[x_key], archive[y_key]
    except FileNotFoundError:
        raise DataError(
            f"data file {path} is missing; check [data] {part} in the study file"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"data file {path} is not a readable .npz ({exc})") from None
    where = f"data file {path} ({x_key})"
    if x.ndim < 2:
        raise DataError(
            f"{where}: expected one row per example (2 or more dimensions), got shape {x.shape}"
        )
    if len(x) != len(y):
        raise DataError(
            f"data file {path}: {len(x)} inputs in {x_key} but {len(y)} labels in {y_key}"
        )
    if y.ndim != 1:
        raise DataError(
            f"data file {path} ({y_key}): expected one label per example, got shape {y.shape}"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{where}: inputs must be numbers, got dtype {x.dtype}; encode them first")
    scaled = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    bad = ~np.isfinite(scaled)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(
            f"{where}: {int(bad.sum())} NaN or infinite values in {len(rows)} examples "
            f"(first at index {int(rows[0])}); remove or fill them"
        )
    return scaled, y
