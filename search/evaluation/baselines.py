"""The documented baselines of ../shared/docs/baselines.md, and lookups over them.

The figures are data, kept in baselines.toml beside this module (shipped as package data) and
read once at import by `baseline_file`; `baseline` defines the record itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from search.errors import UsageError
from search.evaluation.baseline import (
    DATASETS,
    FIGURES,
    KINDS,
    NOT_STATED,
    Baseline,
)
from search.evaluation.baseline_file import load

__all__ = [
    "BASELINES",
    "DATASETS",
    "FIGURES",
    "KINDS",
    "NOT_STATED",
    "Baseline",
    "best_documented",
    "for_dataset",
    "get",
    "reproduction_set",
    "select_for_reproduction",
]

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
