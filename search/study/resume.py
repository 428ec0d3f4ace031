"""Create or resume the Optuna study of a run, and record what reproduces it."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import warnings

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError

from models.task import of_direction
from search.data.source import fingerprint
from search.errors import UsageError
from search.study.config import StudyConfig
from search.study.metadata import git_revision, package_versions
from search.study.strategy import make_pruner, make_sampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Settings whose change between runs of one study is worth a warning (results mix).
_COMPARED = ("max_epochs", "patience", "limit_train", "val_fraction", "split_seed")


def open_study(
    config: StudyConfig,
    storage: optuna.storages.BaseStorage,
    data_source: str,
) -> optuna.Study:
    """Create the study or resume it; refuse a study made for another dataset or space.

    The sampler is seeded per trial number (`strategy.TrialSeededSampler`): workers sharing the
    study never share a random stream, and a single worker stays reproducible.
    """
    attrs = _existing_attrs(storage, config.study_name)
    existing = None if attrs is None else attrs.get("config", {})
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
    data_hashes = fingerprint(config.data_source())
    if config.mode == "search" and existing:
        _refuse_changes(config, existing, attrs.get("data_sha256", {}), data_hashes)
    n_existing = 0
    if existing is not None:
        study_id = storage.get_study_id_from_name(config.study_name)
        n_existing = len(storage.get_all_trials(study_id, deepcopy=False))
    study = optuna.create_study(
        storage=storage,
        study_name=config.study_name,
        directions=config.directions,
        sampler=make_sampler(config),
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    made = [d.name.lower() for d in study.directions]
    if made != config.directions:
        raise UsageError(
            f"study {config.study_name!r} exists with {_describe(made)} and this run asks for "
            f"{_describe(config.directions)}; choose another --study-name"
        )
    # A reproduction of baselines may create the study; its search records the config.
    if config.mode == "search" and "config" not in study.user_attrs:
        records = {
            "config": config.to_dict(),
            "versions": package_versions(),
            "git_revision": git_revision(),
            "data_source": data_source,
            "data_sha256": data_hashes,  # the user's files; a resume refuses changed ones
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "created_on": socket.gethostname(),
        }
        with contextlib.suppress(IntegrityError):
            study.set_metric_names(config.metric_names)  # optuna-dashboard's axis labels
        for key, value in records.items():
            # Workers started together on a new study race to write the same records; the
            # database's unique key lets one win, and the loser's copy is the same anyway.
            with contextlib.suppress(IntegrityError):
                study.set_user_attr(key, value)
        if config.warm_start and n_existing == 0:
            # A practitioner's strong configuration is the first trial; the sampler improves on
            # it (Optuna's enqueue_trial, "evaluate a known good set of parameters first").
            for params in config.warm_starts():
                if warm_start_fits(config, params):
                    study.enqueue_trial(params, skip_if_exists=True)
    return study


def _refuse_changes(
    config: StudyConfig,
    existing: dict,
    recorded: dict[str, str],
    data_hashes: dict[str, str],
) -> None:
    """Results never mix silently: a changed data file or search space is refused."""
    name = config.study_name
    if "space" in existing and existing["space"] != config.to_dict()["space"]:
        changed = [k for k, v in config.to_dict()["space"].items() if existing["space"].get(k) != v]
        raise UsageError(
            f"study {name!r} was made with another search space ({', '.join(changed)} differ); "
            f"its trials cannot be mixed. Restore the space, or give the new one its own "
            f"--study-name (or [study] name)"
        )
    for path, digest in data_hashes.items():
        if path in recorded and recorded[path] != digest:
            raise UsageError(
                f"data file {path} changed since study {name!r} was made (its sha256 differs); "
                "restore the file, or give the new data its own --study-name (or [study] name)"
            )
    missing = sorted(set(recorded) - set(data_hashes))
    if missing:
        raise UsageError(
            f"study {name!r} was made with data file {missing[0]}, which this study file does "
            "not name; restore [data], or use another --study-name"
        )


def _describe(directions: list[str]) -> str:
    """How a refusal names a study's objectives."""
    task = of_direction(directions[0])
    figure = f"{task.label} ({'maximised' if task.direction == 'maximize' else 'minimised'})"
    if len(directions) == 1:
        return f"one objective, {figure}"
    return f"two objectives (a Pareto study: {figure} against parameters)"


def warm_start_fits(config: StudyConfig, params: dict) -> bool:
    """A warm start's `params` lie inside the study's space (a study file may narrow it):
    Optuna's FixedTrial warns about every value outside its distribution."""
    from search.study.space import sample_params  # space imports config only: no cycle

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sample_params(optuna.trial.FixedTrial(params), config.space)
        except ValueError:
            return False
    return not any("out of the range" in str(w.message) for w in caught)


def _existing_attrs(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The study's user attributes (its recorded config, data hashes...); None: no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


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
