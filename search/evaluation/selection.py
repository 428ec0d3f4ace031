"""Choosing what to retrain, on validation figures only: the search's best distinct trials,
or points along a Pareto study's validation front."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from models.task import CLASSIFICATION, Task
from search.study.values import by_figure, figure, front, is_pareto, study_task

# "Within half a point of the most accurate" (the size question of a Pareto study); for a
# regression study, within 1% of the lowest RMSE.
NEAR_BEST_ACCURACY = 0.005
NEAR_BEST_RMSE = 0.01


def config_key(params: dict[str, Any]) -> str:
    """A stable key of a parameter dict: equal configurations share it across trials."""
    canonical = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def select_top(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best complete trials with distinct configurations (best first)."""
    chosen: list[FrozenTrial] = []
    seen: set[str] = set()
    for trial in by_figure(study):
        key = config_key(trial.params)
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


def select(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """What a study retrains (and draws curves for): its best distinct trials, or in a Pareto
    study points along its front."""
    return select_front(study, k) if is_pareto(study) else select_top(study, k)


def select_front(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """Up to k points of a Pareto study's validation front with distinct configurations, most
    accurate first: the most accurate, the smallest near it (`near_best`), then points spread
    evenly along the rest of the front, smallest to largest."""
    points: list[FrozenTrial] = []
    seen: set[str] = set()
    for trial in front(study):  # smallest first
        key = config_key(trial.params)
        if key not in seen:
            seen.add(key)
            points.append(trial)
    if not points:
        return []
    task = study_task(study)
    best = min(points, key=lambda t: (task.sort_key(figure(t)), t.number))
    near = [t for t in points if near_best(task, figure(t), figure(best))]
    chosen = [best] if near[0] is best else [best, near[0]]
    rest = [t for t in points if t not in chosen]
    wanted = k - len(chosen)
    if wanted > 0 and rest:
        step = (len(rest) - 1) / max(wanted - 1, 1)
        picks = sorted({round(i * step) for i in range(min(wanted, len(rest)))})
        chosen += [rest[i] for i in picks]
    return chosen[:k]


def validation_rank(entry: dict[str, Any], task: Task = CLASSIFICATION) -> tuple:
    """Sort key of a retrained configuration, best first, from validation figures alone: the
    retrain's mean over seeds, then the search's own value."""
    return (
        task.sort_key(entry.get(f"{task.monitor}_mean")),
        task.sort_key(entry.get("search_val_accuracy")),
        entry["config_key"],
    )


def near_best(task: Task, value: float | None, best: float | None) -> bool:
    """Within NEAR_BEST of the best figure: half a point of accuracy, or 1% of RMSE."""
    if value is None or best is None:
        return False
    if task.direction == "maximize":
        return best - value <= NEAR_BEST_ACCURACY
    return value <= best * (1 + NEAR_BEST_RMSE)
