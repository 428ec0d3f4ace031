"""What every process of a run opens, in the order that leaves bad input no trace: the data, the
storage, then the study. `search.run` and each worker process call `open_everything`."""

from __future__ import annotations

import warnings

import optuna

from search.data import Split, load_split, load_test
from search.study.config import StudyConfig
from search.study.resume import open_study
from storage.rdb import open_storage
from storage.urls import mask_url

PROG = "search.run"  # the command whose processes these are, for their error lines


def open_everything(
    config: StudyConfig, *, check_test: bool = False
) -> tuple[optuna.Study, optuna.storages.BaseStorage, Split, str]:
    """Data, storage and study of a run, and the storage URL with its password masked.

    check_test: also read a user's test file now (its columns, shape and labels checked, no
    figure computed), so a bad one is refused before the search rather than after it.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats, the retry callback and grouped TPE are "experimental" in Optuna's terms: the
    # warnings say nothing a user of this service can act on.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    data = load_split(
        config.data_source(),
        task=config.task,
        val_fraction=config.val_fraction,
        split_seed=config.split_seed,
        limit_train=config.limit_train,
    )
    source = config.data_source()
    if check_test and source.kind != "builtin" and source.has_test:
        load_test(source, split=data)  # read and checked only; evaluated after the retrain
    storage = open_storage(config.storage, heartbeat_interval=config.heartbeat)
    study = open_study(config, storage, data.source)
    return study, storage, data, mask_url(config.storage)
