"""Choosing what to retrain, on validation figures only: the search's best distinct trials."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from models.task import Task, of_direction


def config_key(params: dict[str, Any]) -> str:
    """A stable key of a parameter dict: equal configurations share it across trials."""
    canonical = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def select_top(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best complete trials with distinct configurations (best first)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen: list[FrozenTrial] = []
    seen: set[str] = set()
    task = study_task(study)
    for trial in sorted(complete, key=lambda t: (task.sort_key(t.value), t.number)):
        key = config_key(trial.params)
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


def study_task(study: optuna.Study) -> Task:
    """What a trial's value is: accuracy (maximised) or RMSE (regression, minimised)."""
    return of_direction(study.direction.name)
