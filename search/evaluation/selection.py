"""Choosing what to retrain, on validation figures only: the search's best distinct trials."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def config_key(params: dict[str, Any]) -> str:
    """A stable key of a parameter dict: equal configurations share it across trials."""
    canonical = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def select_top(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best complete trials with distinct configurations (best first)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen: list[FrozenTrial] = []
    seen: set[str] = set()
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0  # best first either way
    for trial in sorted(complete, key=lambda t: (sign * t.value, t.number)):
        key = config_key(trial.params)
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


def value_name(study: optuna.Study) -> str:
    """What a trial's value is: accuracy (maximised) or RMSE (regression, minimised)."""
    return "accuracy" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "RMSE"
