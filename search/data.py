"""Fashion-MNIST and MNIST from their original IDX files, with a fixed, seeded validation split.

Where the files are looked for, in order:
1. `--data-dir` / env SEARCH_DATA_DIR: a folder with the four standard files (gz or raw);
   when given, it must hold them (no silent fallback to a download);
2. for fashion, /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist);
3. a shared/data/<fashion-mnist|mnist> folder beside the checkout (../shared/data);
4. Keras' own `keras.datasets.<name>.load_data()`, which downloads on a connected machine.

The search only ever sees the training file, split 90/10; the test file is read only by
`load_test`, which the retrain/evaluation stage calls.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import DataError

DATASETS = ("fashion", "mnist")
_SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# Local copies looked for, in order, when no --data-dir is given: Debian's package, then a
# shared/data folder beside the checkout (the team's machines keep the IDX files there).
LOCAL_DIRS = {
    "fashion": (Path("/usr/share/datasets/fashion-mnist"), _SHARED / "fashion-mnist"),
    "mnist": (_SHARED / "mnist",),
}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
_IDX_UBYTE = 0x08
HOW_TO_PROVIDE = (
    "pass --data-dir (or set SEARCH_DATA_DIR) to a folder with the four IDX files "
    "(train-images-idx3-ubyte.gz, ...), or install Debian's dataset-fashion-mnist, "
    "or run once on a connected machine so Keras can download it"
)


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


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """One IDX file (gzip or raw), checked: magic number, dimension count and data length."""
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise DataError(f"data file {path} is missing; {HOW_TO_PROVIDE}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"data file {path} is corrupt ({exc}); {HOW_TO_PROVIDE}") from None
    magic = raw[:4].ljust(4, b"\xff")
    zero, dtype, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or dtype != _IDX_UBYTE or ndim != expected_ndim:
        raise DataError(
            f"data file {path} is corrupt (bad IDX magic number {raw[:4].hex() or 'none'}, "
            f"expected 0000080{expected_ndim}); {HOW_TO_PROVIDE}"
        )
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"data file {path} is corrupt (only {len(raw)} bytes); {HOW_TO_PROVIDE}")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise DataError(
            f"data file {path} is corrupt (header says {dims} = {int(np.prod(dims))} bytes, "
            f"file holds {len(body)}); {HOW_TO_PROVIDE}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_part(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    images_stem, labels_stem = FILES[part]
    paths = []
    for stem in (images_stem, labels_stem):
        path = _find(folder, stem)
        if path is None:
            raise DataError(f"data file {folder / stem}.gz is missing; {HOW_TO_PROVIDE}")
        paths.append(path)
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    _check(images, labels, part, f"{paths[0]} / {paths[1]}")
    return images, labels


def _check(images: np.ndarray, labels: np.ndarray, part: str, where: str) -> None:
    """Shapes and counts agree (a truncated file already fails read_idx's length check)."""
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{where}: images are {images.shape[1:]}, expected {IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise DataError(f"{where}: the {part} files hold no images; {HOW_TO_PROVIDE}")
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise DataError(f"{where}: label {int(labels.max())} is out of range 0..9")


def _load_part(dataset: str, data_dir: str | None, part: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Raw uint8 images and labels of one part ("train" or "test"), and where they came from."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; use one of {DATASETS}")
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist; {HOW_TO_PROVIDE}")
        images, labels = _read_part(folder, part)
        return images, labels, str(folder.resolve())
    for folder in LOCAL_DIRS[dataset]:
        if _find(folder, FILES[part][0]) is not None:
            images, labels = _read_part(folder, part)
            return images, labels, str(folder)
    return _download(dataset, part)


def _download(dataset: str, part: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras' own loader: downloads once to ~/.keras/datasets on a connected machine."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    loader = {"fashion": keras.datasets.fashion_mnist, "mnist": keras.datasets.mnist}[dataset]
    try:
        train, test = loader.load_data()
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        raise DataError(
            f"no local copy of {dataset} was found and Keras could not download it "
            f"({type(exc).__name__}); {HOW_TO_PROVIDE}"
        ) from None
    images, labels = train if part == "train" else test
    _check(images, labels, part, f"keras.datasets.{loader.__name__.rsplit('.', 1)[-1]}")
    return images, labels, f"keras.datasets ({dataset})"


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
    images, labels, source = _load_part(dataset, data_dir, "train")
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
    images, labels, _ = _load_part(dataset, data_dir, "test")
    return to_float(images), labels.copy()
