"""What the retrain harness trains: a search trial's configuration or a documented baseline.

A `Candidate` carries a builder and its training settings, so the harness treats both alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import keras
from optuna.trial import FrozenTrial

from search.data import Split
from search.evaluation.baselines import select_for_reproduction
from search.evaluation.selection import config_key
from search.study.config import StudyConfig
from search.study.objective import build_model
from search.study.space import params_from_stored


@dataclass(frozen=True)
class Candidate:
    """A configuration to train: a search trial's parameters or a documented baseline."""

    kind: str  # "trial" or "baseline"
    config_key: str
    label: str
    params: dict[str, Any]
    build: Callable[[], keras.Model]
    batch_size: int
    max_epochs: int
    patience: int | None  # None: train exactly max_epochs, keep the last weights
    trial: FrozenTrial | None = None
    # What early stopping watches and which epoch's weights are kept: a search trial is
    # retrained on the figure the search scored it by (its best-epoch validation accuracy, or
    # RMSE for regression); a documented baseline keeps its source's rule (val_loss).
    monitor: str = "val_accuracy"


def trial_candidates(trials: Iterable[FrozenTrial], config: StudyConfig, split: Split) -> list:
    candidates = []
    for trial in trials:
        params = params_from_stored(trial.params, config.space)
        candidates.append(
            Candidate(
                kind="trial",
                config_key=config_key(trial.params),
                label=f"trial {trial.number}",
                params=dict(trial.params),
                build=lambda p=params: build_model(p, split, config.max_epochs),
                batch_size=params.batch_size,
                max_epochs=config.max_epochs,
                patience=config.patience,
                trial=trial,
                monitor=config.task_spec.monitor,
            )
        )
    return candidates


def baseline_candidates(config: StudyConfig, split: Split) -> list[Candidate]:
    """The documented configurations to reproduce, each capped at --max-epochs.

    The cap is part of the key: a reproduction allowed 3 epochs is not the same result as one
    allowed 20, and the report shows how many epochs each was allowed and ran.
    """
    candidates = []
    for baseline in select_for_reproduction(config.dataset, config.baseline_ids):
        cap = min(baseline.epochs, config.max_epochs)
        candidates.append(
            Candidate(
                kind="baseline",
                config_key=f"{baseline.id}@{cap}",
                label=baseline.id,
                params={
                    "baseline": baseline.id,
                    "documented_epochs": baseline.epochs,
                    "epochs_allowed": cap,
                },
                build=lambda b=baseline: b.build(split.input_shape),
                batch_size=baseline.batch_size,
                max_epochs=cap,
                patience=baseline.patience,
                monitor="val_loss",
            )
        )
    return candidates
