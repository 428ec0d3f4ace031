"""The sampler and the pruner of a study, from its config."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from search.study.config import StudyConfig
from search.study.seeds import trial_seed


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler whose draws for trial n come from a fresh inner sampler seeded
    `trial_seed(seed, n)`.

    Trial numbers are unique within a study, so workers that share a study (on any number of
    machines, started at the same moment) never draw from the same random stream, while one
    worker alone is reproducible: the same seed gives the same trial-by-trial draws, and a
    resumed study goes on from its next trial number instead of replaying the first draws.
    The inner sampler (TPE or random) reads the study's history as usual.
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._current = make(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._current = self._make(trial_seed(self._seed, trial.number))
        self._current.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._current.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._current.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._current.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._current.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._current.reseed_rng()


def make_sampler(config: StudyConfig) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for the conditional per-layer parameters) or random, seeded
    per trial from config.seed (`TrialSeededSampler`)."""
    if config.sampler == "random":
        return TrialSeededSampler(_random, config.seed)
    return TrialSeededSampler(_tpe, config.seed)


def _random(seed: int) -> optuna.samplers.RandomSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _tpe(seed: int) -> optuna.samplers.TPESampler:
    with warnings.catch_warnings():
        # multivariate and group are "experimental" in Optuna's terms, and the ones it recommends
        # for conditional spaces; the warning would be printed on every trial.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """Pruners act on validation accuracy reported at steps 1 .. max_epochs (the epoch).

    A Pareto study cannot use them (Optuna refuses `report` with two objectives): its trials
    stop by the rules of search/study/pareto.py, in the objective: "hyperband" (the default)
    and "sha" turn on the front rule and the multi-objective rungs, "median" and "patient" the
    front rule alone, "none" neither.
    """
    if config.pareto:
        return optuna.pruners.NopPruner()
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=config.max_epochs, reduction_factor=3
        )
    if config.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    # Steps are 1-based epochs: no median decision after the first epoch, as before.
    median = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if config.pruner == "median":
        return median
    if config.pruner == "patient":
        # Prune only when the median rule has held for 2 epochs in a row.
        return optuna.pruners.PatientPruner(median, patience=2)
    return optuna.pruners.NopPruner()
