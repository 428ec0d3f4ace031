"""Where a dataset's files are found, in order:

1. `--data-dir` / env SEARCH_DATA_DIR: a folder with the four standard files (gz or raw);
   when given, it must hold them (no silent fallback to a download);
2. for fashion, /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist);
3. Keras' own cache (`$KERAS_HOME/datasets`, default `~/.keras/datasets`), where a user's copy
   lives after one download (fashion as IDX files; mnist as Keras' mnist.npz, read by step 4);
4. Keras' own `keras.datasets.<name>.load_data()`, which reads that cache or downloads on a
   connected machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from search.data.idx import FILES, HOW_TO_PROVIDE, check_part, find_file, read_part
from search.errors import DataError

DATASETS = ("fashion", "mnist")


def keras_cache_dir() -> Path:
    """Keras' download folder: `$KERAS_HOME/datasets`, else `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "datasets"


def local_dirs(dataset: str) -> tuple[Path, ...]:
    """Local copies looked for, in order, when no --data-dir is given."""
    if dataset == "fashion":
        return (Path("/usr/share/datasets/fashion-mnist"), keras_cache_dir() / "fashion-mnist")
    return ()  # Keras caches MNIST as mnist.npz, which its own loader reads


def load_part(dataset: str, data_dir: str | None, part: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Raw uint8 images and labels of one part ("train" or "test"), and where they came from."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; use one of {DATASETS}")
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist; {HOW_TO_PROVIDE}")
        images, labels = read_part(folder, part)
        return images, labels, str(folder.resolve())
    for folder in local_dirs(dataset):
        if find_file(folder, FILES[part][0]) is not None:
            images, labels = read_part(folder, part)
            return images, labels, str(folder)
    return _download(dataset, part)


def _download(dataset: str, part: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras' own loader: downloads once to ~/.keras/datasets on a connected machine."""
    import keras  # only here: reading local files needs no TensorFlow in the parent process

    loader = {"fashion": keras.datasets.fashion_mnist, "mnist": keras.datasets.mnist}[dataset]
    try:
        train, test = loader.load_data()
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        raise DataError(
            f"no local copy of {dataset} was found and Keras could not download it "
            f"({type(exc).__name__}); {HOW_TO_PROVIDE}"
        ) from None
    images, labels = train if part == "train" else test
    check_part(images, labels, part, f"keras.datasets.{loader.__name__.rsplit('.', 1)[-1]}")
    return images, labels, f"keras.datasets ({dataset})"
