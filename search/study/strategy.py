"""The sampler and the pruner of a study, from its config."""

from __future__ import annotations

import warnings

import optuna

from search.study.config import StudyConfig


def make_sampler(
    config: StudyConfig, n_existing: int, *, salt: int = 0
) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for the conditional per-layer parameters) or random.

    The seed is offset by the number of trials already in the study, so a resumed run does not
    replay the first run's random draws, and by `salt` so parallel workers draw differently.
    """
    seed = config.seed + n_existing + salt
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        # multivariate and group are "experimental" in Optuna's terms, and the ones it recommends
        # for conditional spaces; the warning would be printed on every run.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """Pruners act on validation accuracy reported at steps 1 .. max_epochs (the epoch)."""
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
