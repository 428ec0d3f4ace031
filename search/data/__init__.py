"""Datasets: IDX files read and checked (idx), where they are found (locate), and the seeded
train / validation split the search sees, with the test set kept apart (split)."""

from search.data.source import DataSource
from search.data.split import Split, load_split, load_test, to_float

__all__ = ["DataSource", "Split", "load_split", "load_test", "to_float"]
