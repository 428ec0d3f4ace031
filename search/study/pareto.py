"""The Pareto search's pruning rules: stop a trial that cannot reach the front any more, or that
falls behind at a rung. (The Keras callback that applies them each epoch is
`search.study.objective.ParetoPruningCallback`.)

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

That rule is safe and stops little. With the rungs on (the default pruner), the trial also meets
successive halving's rungs, as in Hyperband's first bracket, ranked the multi-objective way
(MO-ASHA, Schmucker et al. 2021): at epochs 1, 3, 9, ... (`RUNG_FACTOR`) it goes on only if it
is not behind a third or more of the trials that reached that epoch (itself included; running,
stopped and complete ones), ranked by non-dominated sorting of (best figure so far,
parameters). A trial no other one dominates at the rung always goes on, so the smallest and the
most accurate so far do.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from models.task import Task

MIN_CURVES = 4  # finished trials that reached an epoch before the rule acts at that epoch
RUNG_FACTOR = 3  # successive halving's reduction factor: rungs at epochs 1, 3, 9, 27, ...
# The --pruner values that turn the rungs on in a Pareto search (the rungs are successive
# halving's); any other but "none" uses the front rule alone.
PARETO_RUNG_PRUNERS = ("hyperband", "sha")
# The trials ranked at a rung: those that trained to it, as they did.
RUNG_STATES = (TrialState.RUNNING, TrialState.PRUNED, TrialState.COMPLETE)
CURVE = "curve"  # the user attribute holding a trial's validation figure per epoch
SIZE = "n_params"  # the second objective, also a user attribute set before training


@dataclass(frozen=True)
class Finished:
    """A trial, as the rules see it: its size and its validation curve (complete trials for the
    front rule; trials in any state for the rungs)."""

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


def pruning_label(pruner: str) -> str:
    """What a --pruner value does in a Pareto search, in words (the run's header, the note)."""
    if pruner == "none":
        return "none (curves stored, nothing stopped)"
    if pruner in PARETO_RUNG_PRUNERS:
        return f"front rule and rungs at epochs 1, {RUNG_FACTOR}, {RUNG_FACTOR**2}, ... (Pareto)"
    return "front rule (Pareto)"


def is_rung(epoch: int) -> bool:
    """Epochs 1, 3, 9, ...: the powers of RUNG_FACTOR."""
    while epoch > 1 and epoch % RUNG_FACTOR == 0:
        epoch //= RUNG_FACTOR
    return epoch == 1


def outranked_at_rung(
    curve: Sequence[float], n_params: int, others: Sequence[Finished], task: Task
) -> bool:
    """At a rung epoch: whether at least ceil(n / RUNG_FACTOR) of the n trials that reached it
    (this one included) lie on fronts strictly ahead of this one's, in the non-dominated sorting
    of (best figure by the rung, parameters). Never before MIN_CURVES others reached the rung."""
    epoch = len(curve)
    if epoch == 0 or not is_rung(epoch):
        return False
    points = [
        (running_best(o.curve, task)[epoch - 1], o.n_params)
        for o in others
        if len(o.curve) >= epoch
    ]
    if len(points) < MIN_CURVES:
        return False
    mine = (running_best(curve, task)[-1], n_params)
    ranks = front_ranks([mine, *points], task)
    ahead = sum(rank < ranks[0] for rank in ranks[1:])
    return ahead >= math.ceil((len(points) + 1) / RUNG_FACTOR)


def front_ranks(points: Sequence[tuple[float, int]], task: Task) -> list[int]:
    """Each point's front in the non-dominated sorting of (figure, parameters): 0 for points no
    other dominates, 1 for those only front 0 dominates, and so on. The two-objective sweep:
    by parameters, then figure, each point joins the first front whose best figure so far does
    not dominate it (equal points share a front), in O(n log n)."""
    keyed = sorted({(size, task.sort_key(figure)) for figure, size in points})
    best: list[float] = []  # best figure key of each front so far, never decreasing by front
    rank_of = {}
    for size, key in keyed:
        # Earlier distinct points have fewer parameters or the same and a better figure, so
        # each dominates this one exactly when its figure key is at most this one's.
        front = bisect.bisect_right(best, key)
        if front == len(best):
            best.append(key)
        else:
            best[front] = key
        rank_of[(size, key)] = front
    return [rank_of[(size, task.sort_key(figure))] for figure, size in points]


def trial_curves(
    study: optuna.Study, exclude: int | None = None
) -> list[tuple[TrialState, Finished]]:
    """Every trial's state, size and curve but trial `exclude`'s (trials of before the curve
    attribute are left out: they say nothing about learning curves)."""
    curves = []
    for trial in study.get_trials(deepcopy=False):
        curve = trial.user_attrs.get(CURVE)
        size = trial.user_attrs.get(SIZE)
        if curve and size is not None and trial.number != exclude:
            curves.append((trial.state, Finished(int(size), tuple(float(v) for v in curve))))
    return curves
