"""The Optuna study of a run: sampler, pruner, creation or resumption, and its records."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import warnings

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError

from search.config import StudyConfig
from search.errors import UsageError
from search.metadata import git_revision, package_versions

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Settings whose change between runs of one study is worth a warning (results mix).
_COMPARED = ("max_epochs", "patience", "limit_train", "val_fraction", "split_seed", "space")


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
    """Pruners act on validation accuracy reported at steps 0 .. max_epochs - 1."""
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=config.max_epochs, reduction_factor=3
        )
    if config.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    median = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if config.pruner == "median":
        return median
    if config.pruner == "patient":
        # Prune only when the median rule has held for 2 epochs in a row.
        return optuna.pruners.PatientPruner(median, patience=2)
    return optuna.pruners.NopPruner()


def open_study(
    config: StudyConfig,
    storage: optuna.storages.BaseStorage,
    data_source: str,
    *,
    worker_index: int = 0,
) -> optuna.Study:
    """Create the study or resume it; refuse a study that was made for another dataset.

    A single worker on a study nobody else runs keeps the plain seed (reproducible); workers
    that share a study mix in their index, or their process id when another worker is running
    (another machine), so their random draws differ.
    """
    existing = _existing_config(storage, config.study_name)
    if existing is not None and existing.get("dataset") not in (None, config.dataset):
        raise UsageError(
            f"study {config.study_name!r} in this storage searches {existing['dataset']!r}, "
            f"not {config.dataset!r}; choose another --study-name or the matching --study"
        )
    n_existing, salt = 0, 7919 * worker_index
    if existing is not None:
        trials = storage.get_all_trials(
            storage.get_study_id_from_name(config.study_name), deepcopy=False
        )
        n_existing = len(trials)
        if any(t.state == TrialState.RUNNING for t in trials):
            salt += os.getpid()
    study = optuna.create_study(
        storage=storage,
        study_name=config.study_name,
        direction="maximize",
        sampler=make_sampler(config, n_existing, salt=salt),
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise UsageError(
            f"study {config.study_name!r} exists but minimizes; choose another --study-name"
        )
    # A reproduction of baselines may create the study; its search records the config.
    if config.mode == "search" and "config" not in study.user_attrs:
        records = {
            "config": config.to_dict(),
            "versions": package_versions(),
            "git_revision": git_revision(),
            "data_source": data_source,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "created_on": socket.gethostname(),
        }
        for key, value in records.items():
            # Workers started together on a new study race to write the same records; the
            # database's unique key lets one win, and the loser's copy is the same anyway.
            with contextlib.suppress(IntegrityError):
                study.set_user_attr(key, value)
    return study


def _existing_config(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get("config", {})


def config_changes(study: optuna.Study, config: StudyConfig) -> list[str]:
    """Human lines for settings that differ from those the study was created with."""
    recorded = study.user_attrs.get("config", {})
    current = config.to_dict()
    return [
        f"{key}: {recorded[key]} -> {current[key]}"
        for key in _COMPARED
        if key in recorded and recorded[key] != current[key]
    ]


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))
