"""The search stage of a run: its header, the worker processes, and the summary at the end."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from search.study.config import StudyConfig
from search.study.pareto import pruning_label
from search.study.resume import config_changes, count_finished
from search.study.supervisor import run_workers
from search.study.values import best_trial, figure, is_pareto, study_task


def run_search(
    config: StudyConfig, study: optuna.Study, storage: optuna.storages.BaseStorage
) -> int:
    """The search stage of a run: its header, the worker processes, its summary; exit status."""
    finished = count_finished(study)
    pruner = pruning_label(config.pruner) if config.pareto else config.pruner
    print(
        f"search: {finished} finished trials, target {config.n_trials}; sampler "
        f"{config.sampler}, pruner {pruner}, at most {config.max_epochs} epochs a trial",
        flush=True,
    )
    for change in config_changes(study, config):
        print(f"note: this run differs from the study's recorded config: {change}")
    if finished >= config.n_trials:
        print(
            f"the study already has {finished} finished trials (target {config.n_trials}); "
            "nothing to search. Raise --n-trials to search further."
        )
        summary(study, 0.0)
        return 0
    started = time.time()
    code = run_workers(config, study, storage, (started, finished))
    summary(study, time.time() - started)
    return code


def summary(study: optuna.Study, seconds: float, prefix: str = "") -> None:
    """What the search stage did, for the end of a run."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    parts = ", ".join(f"{n} {s.name.lower()}" for s, n in counts.items() if n)
    print(f"{prefix}done in {seconds:.0f} s: {len(trials)} trials in the study ({parts or 'none'})")
    label = study_task(study).label
    best = best_trial(study)
    if best is None:
        print(f"{prefix}no completed trial yet")
        return
    if is_pareto(study):
        print(f"{prefix}validation front: {len(study.best_trials)} trials ({label} against size)")
    print(
        f"{prefix}best: trial {best.number}, validation {label} {figure(best):.4f}, "
        f"{best.user_attrs.get('n_params', 0):,} params, params {best.params}"
    )
    print(f"{prefix}resume: run the same command again")
