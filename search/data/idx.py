"""IDX files (the format of Fashion-MNIST and MNIST), read and checked.

Magic number, dimension count, data length, and that images and labels agree.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from search.errors import DataError

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


def find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def read_part(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    images_stem, labels_stem = FILES[part]
    paths = []
    for stem in (images_stem, labels_stem):
        path = find_file(folder, stem)
        if path is None:
            raise DataError(f"data file {folder / stem}.gz is missing; {HOW_TO_PROVIDE}")
        paths.append(path)
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    check_part(images, labels, part, f"{paths[0]} / {paths[1]}")
    return images, labels


def check_part(images: np.ndarray, labels: np.ndarray, part: str, where: str) -> None:
    """Shapes and counts agree (a truncated file already fails read_idx's length check)."""
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{where}: images are {images.shape[1:]}, expected {IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise DataError(f"{where}: the {part} files hold no images; {HOW_TO_PROVIDE}")
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise DataError(f"{where}: label {int(labels.max())} is out of range 0..9")
