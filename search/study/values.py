"""What a trial's values are: the validation figure first, and in a Pareto study (--pareto) the
trainable parameter count second. Everything that ranks trials asks here, so one-objective and
Pareto studies are read the same way."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from models.task import Task, of_direction


def figure(trial: FrozenTrial) -> float | None:
    """The trial's validation figure (accuracy or RMSE); None when it has no value."""
    values = trial.values
    return values[0] if values else None


def study_task(study: optuna.Study) -> Task:
    """What the first value is: accuracy (maximised) or RMSE (regression, minimised)."""
    return of_direction(study.directions[0].name)


def is_pareto(study: optuna.Study) -> bool:
    """A study that trades the validation figure against the parameter count."""
    return len(study.directions) == 2


def by_figure(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, best validation figure first (ties: the earlier trial)."""
    task = study_task(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: (task.sort_key(figure(t)), t.number))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the best validation figure (in a Pareto study: the most
    accurate end of the front); None before any trial completes."""
    ranked = by_figure(study)
    return ranked[0] if ranked else None


def front(study: optuna.Study) -> list[FrozenTrial]:
    """A Pareto study's validation front, smallest network first (Optuna's best_trials)."""
    return sorted(study.best_trials, key=lambda t: (t.values[1], t.number))


def epoch_figures(trial: FrozenTrial) -> dict[int, float]:
    """The trial's validation figure per 1-based epoch: its intermediate values, or in a Pareto
    study (where Optuna takes no intermediate values) its "curve" attribute. Studies made
    before steps were 1-based stored step 0 first; those steps are shifted."""
    steps = sorted(trial.intermediate_values)
    if steps:
        offset = 1 if steps[0] == 0 else 0
        return {step + offset: trial.intermediate_values[step] for step in steps}
    curve = trial.user_attrs.get("curve") or []
    return {epoch: float(value) for epoch, value in enumerate(curve, start=1)}
