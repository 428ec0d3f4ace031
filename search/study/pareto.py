"""The Pareto search's pruning rule: stop a trial that cannot reach the front any more.

A Pareto study has two objectives, the validation figure and the trainable parameter count.
Optuna refuses `trial.report` and `should_prune` in multi-objective studies, so no Optuna pruner
can act there. But the parameter count is known before the first epoch: only the learning curve
is uncertain. So every epoch the trial stores its curve (user attribute "curve"), and the rule
below asks whether the trial could still beat every finished trial of its size or smaller:

- its best figure so far, plus the largest later gain any finished trial showed from the same
  epoch on (the most a curve has ever improved from there, in this study), is its optimistic
  final figure;
- if a complete trial with at most as many parameters already has a better final figure than
  that optimistic one, the trial cannot join the front (it would be dominated), and stops.

The smallest network so far is never stopped (nothing is smaller), and nothing is stopped
before `MIN_CURVES` finished trials have run as far as the epoch in question.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import optuna
from optuna.trial import TrialState

from models.task import Task

MIN_CURVES = 4  # finished trials that reached an epoch before the rule acts at that epoch
CURVE = "curve"  # the user attribute holding a trial's validation figure per epoch
SIZE = "n_params"  # the second objective, also a user attribute set before training


@dataclass(frozen=True)
class Finished:
    """A complete trial, as the rule sees it: its size and its validation curve."""

    n_params: int
    curve: tuple[float, ...]


def running_best(curve: Sequence[float], task: Task) -> list[float]:
    """The best figure up to each epoch (the curve a trial's final value is taken from)."""
    return list(itertools.accumulate(curve, task.better))


def optimistic_final(
    curve: Sequence[float], finished: Sequence[Finished], task: Task
) -> float | None:
    """The trial's best so far plus the largest gain any finished trial made from this epoch
    to its end; None while fewer than MIN_CURVES finished trials reached this epoch."""
    epoch = len(curve)
    gains = []
    for other in finished:
        if len(other.curve) < epoch:
            continue
        best = running_best(other.curve, task)
        gain = abs(best[-1] - best[epoch - 1])
        if math.isfinite(gain):
            gains.append(gain)
    if epoch == 0 or len(gains) < MIN_CURVES:
        return None
    so_far = running_best(curve, task)[-1]
    return task.shifted(so_far, max(gains))


def should_stop(
    curve: Sequence[float], n_params: int, finished: Sequence[Finished], task: Task
) -> bool:
    """Whether a complete trial no larger than this one already beats its optimistic final
    figure: then the trial cannot reach the validation front, and stops."""
    hope = optimistic_final(curve, finished, task)
    if hope is None:
        return False
    rivals = [running_best(f.curve, task)[-1] for f in finished if f.n_params <= n_params]
    return any(task.sort_key(rival) < task.sort_key(hope) for rival in rivals)


class ParetoPruningCallback(keras.callbacks.Callback):
    """Store the trial's curve every epoch and stop it when `should_stop` says so (with
    prune=False only store it: the unpruned Pareto search, `--pruner none`)."""

    def __init__(
        self,
        trial: optuna.trial.Trial,
        n_params: int,
        task: Task,
        max_epochs: int,
        *,
        prune: bool = True,
    ) -> None:
        super().__init__()
        self._trial, self._n_params, self._task, self._prune = trial, n_params, task, prune
        self._max_epochs = max_epochs
        self._curve: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = (logs or {}).get(self._task.monitor)
        if value is None:
            return
        self._curve.append(float(value))
        self._trial.set_user_attr(CURVE, self._curve)
        if not self._prune or len(self._curve) >= self._max_epochs:
            return  # after the last epoch the trial completes anyway: its values inform TPE
        if should_stop(self._curve, self._n_params, finished_curves(self._trial.study), self._task):
            raise optuna.TrialPruned(
                f"epoch {len(self._curve)}: a trial of at most {self._n_params:,} parameters "
                "already beats this one's best possible figure"
            )


def finished_curves(study: optuna.Study) -> list[Finished]:
    """The complete trials' sizes and curves (trials of before the curve attribute are left
    out: they say nothing about gains)."""
    finished = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        curve = trial.user_attrs.get(CURVE)
        size = trial.user_attrs.get(SIZE)
        if curve and size is not None:
            finished.append(Finished(int(size), tuple(float(v) for v in curve)))
    return finished
