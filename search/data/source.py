"""Where a study's data comes from: a built-in dataset, or the user's own files.

A `DataSource` names the files; `fingerprint` hashes them so a resumed study can refuse data
that changed under it. Reading is done by `idx` (IDX folders), `arrays` (.npz) and `tables`
(CSV, Parquet).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from search.errors import DataError

BUILTIN = ("fashion", "mnist")
FILE_KINDS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}


@dataclass(frozen=True)
class DataSource:
    """A built-in dataset (`builtin`, found by `locate`), or `train` (and optionally `test`):
    each a .csv, .parquet or .npz file or a folder of the four IDX files."""

    builtin: str | None = None  # "fashion" or "mnist"
    data_dir: str | None = None  # built-in only: the folder of its IDX files (--data-dir)
    train: str | None = None
    test: str | None = None
    target: str | None = None  # CSV and Parquet: the column to predict

    def __post_init__(self) -> None:
        if (self.builtin is None) == (self.train is None):
            raise ValueError("a data source is either a built-in dataset or a train file")
        if self.builtin is not None and self.builtin not in BUILTIN:
            raise ValueError(f"unknown built-in dataset {self.builtin!r}; use one of {BUILTIN}")

    @property
    def kind(self) -> str:
        """'builtin', 'idx' (a folder), 'csv', 'parquet' or 'npz'."""
        if self.builtin is not None:
            return "builtin"
        return kind_of(Path(self.train))

    @property
    def name(self) -> str:
        """What the study searches: the built-in name, else the train file's name."""
        return self.builtin or Path(self.train).name

    @property
    def has_test(self) -> bool:
        return self.builtin is not None or self.test is not None

    def files(self) -> list[Path]:
        """The user's data files (a folder: the files in it), for the fingerprint."""
        if self.builtin is not None:
            return []
        paths = []
        for given in (self.train, self.test):
            if given is None:
                continue
            path = Path(given)
            paths += sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        return paths


def kind_of(path: Path) -> str:
    if path.is_dir():
        return "idx"
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"data file {path}: unknown format {path.suffix or '(no suffix)'!r}; use a .csv, "
            ".parquet or .npz file, or a folder of IDX files"
        )
    return kind


def fingerprint(source: DataSource) -> dict[str, str]:
    """sha256 of every data file of `source`, by file name: what a resumed study compares."""
    hashes = {}
    for path in source.files():
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise DataError(f"data file {path} cannot be read ({exc.strerror or exc})") from None
        hashes[str(path)] = digest.hexdigest()
    return hashes
