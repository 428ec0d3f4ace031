"""Create or resume the Optuna study of a run, and record what reproduces it."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError

from search.errors import UsageError
from search.study.config import WARM_START, StudyConfig
from search.study.metadata import git_revision, package_versions
from search.study.strategy import make_pruner, make_sampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Settings whose change between runs of one study is worth a warning (results mix).
_COMPARED = ("max_epochs", "patience", "limit_train", "val_fraction", "split_seed", "space")


def open_study(
    config: StudyConfig,
    storage: optuna.storages.BaseStorage,
    data_source: str,
) -> optuna.Study:
    """Create the study or resume it; refuse a study made for another dataset or space.

    The sampler is seeded per trial number (`strategy.TrialSeededSampler`): workers sharing the
    study never share a random stream, and a single worker stays reproducible.
    """
    existing = _existing_config(storage, config.study_name)
    if existing is not None and existing.get("dataset") not in (None, config.dataset):
        raise UsageError(
            f"study {config.study_name!r} in this storage searches {existing['dataset']!r}, "
            f"not {config.dataset!r}; choose another --study-name or the matching --study"
        )
    if config.mode == "search" and existing:  # a recorded config: the study has searched
        made_with = existing.get("space_version", 1)  # version 1 did not record itself
        if made_with != config.space_version:
            raise UsageError(
                f"study {config.study_name!r} was made with search space version {made_with} "
                f"and this service samples version {config.space_version} (other parameters); "
                f"its trials cannot be mixed. Start a new study with --study-name "
                f"{config.study_name}-v{config.space_version}, or finish the old one with the "
                f"revision it records (study user attribute git_revision)"
            )
    n_existing = 0
    if existing is not None:
        study_id = storage.get_study_id_from_name(config.study_name)
        n_existing = len(storage.get_all_trials(study_id, deepcopy=False))
    study = optuna.create_study(
        storage=storage,
        study_name=config.study_name,
        direction="maximize",
        sampler=make_sampler(config),
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
        if config.warm_start and n_existing == 0:
            # A practitioner's strong configuration is the first trial; the sampler improves on
            # it (Optuna's enqueue_trial, "evaluate a known good set of parameters first").
            study.enqueue_trial(WARM_START, skip_if_exists=True)
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
