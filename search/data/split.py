"""The search's data: a fixed, seeded validation split of the training file; and the test set.

The search only ever sees the training file, split 90/10; the test file is read only by
`load_test`, which the retrain/evaluation stage calls.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from search.data.locate import load_part


@dataclass(frozen=True)
class Split:
    """Pixels as float32 in [0, 1] with shape (n, 28, 28, 1); labels as uint8 class ids."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    source: str  # where the files came from, for the study's attributes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @functools.cached_property
    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of each input feature over the training part (never validation):
        what input standardisation uses. Computed once per process."""
        flat = self.x_train.reshape(len(self.x_train), -1)
        return flat.mean(axis=0, dtype=np.float64), flat.var(axis=0, dtype=np.float64)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


@functools.lru_cache(maxsize=4)
def load_split(
    dataset: str,
    data_dir: str | None,
    *,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    limit_train: int | None = None,
) -> Split:
    """The search's data: a seeded split of the training file. Cached: loaded once per process.

    With `limit_train`, a seeded subset of that many training-file images is split instead
    (quick runs and tests); the validation share is the same fraction of it.
    """
    images, labels, source = load_part(dataset, data_dir, "train")
    order = np.random.default_rng(split_seed).permutation(len(images))
    if limit_train is not None:
        order = order[: min(limit_train, len(order))]
    n_val = max(1, round(len(order) * val_fraction))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return Split(
        x_train=to_float(images[train_idx]),
        y_train=labels[train_idx].copy(),
        x_val=to_float(images[val_idx]),
        y_val=labels[val_idx].copy(),
        source=source,
    )


def load_test(dataset: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The official test set, for the retrain/evaluation stage only (never for the search)."""
    images, labels, _ = load_part(dataset, data_dir, "test")
    return to_float(images), labels.copy()
