"""What every process of a run opens, in the order that leaves bad input no trace: the data, the
storage, then the study. `search.run` and each worker process call `open_everything`."""

from __future__ import annotations

import warnings

import optuna

from search.data import Split, load_split
from search.study.config import StudyConfig
from search.study.resume import open_study
from storage.rdb import open_storage
from storage.urls import mask_url

PROG = "search.run"  # the command whose processes these are, for their error lines


def open_everything(
    config: StudyConfig,
) -> tuple[optuna.Study, optuna.storages.BaseStorage, Split, str]:
    """Data, storage and study of a run, and the storage URL with its password masked."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats, the retry callback and grouped TPE are "experimental" in Optuna's terms: the
    # warnings say nothing a user of this service can act on.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    data = load_split(
        config.dataset,
        config.data_dir,
        val_fraction=config.val_fraction,
        split_seed=config.split_seed,
        limit_train=config.limit_train,
    )
    storage = open_storage(config.storage, heartbeat_interval=config.heartbeat)
    study = open_study(config, storage, data.source)
    return study, storage, data, mask_url(config.storage)
