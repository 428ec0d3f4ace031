"""The search space: the only module that calls `trial.suggest_*`.

Parameter names are a contract (the dashboard, the retrain stage and other tools read them):
`n_layers`; per hidden layer i (0-based) `n_units_l{i}` and `dropout_l{i}`; then `activation`,
`learning_rate`, `optimizer`, `batch_size`, and since space version 2 `batch_norm`,
`weight_decay`, `standardize`, `lr_schedule`, `label_smoothing`. Layer i's parameters exist
only when i < n_layers, which is why the TPE sampler runs with group=True.
"""

from __future__ import annotations

from typing import Any

import optuna

from models.params import ModelParams
from search.study.config import SearchSpace


def sample_params(trial: optuna.trial.BaseTrial, space: SearchSpace) -> ModelParams:
    """Draw one network from `space` through `trial` (a live Trial or a FixedTrial)."""
    n_layers = trial.suggest_int("n_layers", *space.n_layers)
    units, dropouts = [], []
    for i in range(n_layers):
        units.append(trial.suggest_int(f"n_units_l{i}", *space.n_units, log=True))
        dropouts.append(trial.suggest_float(f"dropout_l{i}", *space.dropout))
    return ModelParams(
        units=tuple(units),
        dropouts=tuple(dropouts),
        activation=trial.suggest_categorical("activation", space.activations),
        learning_rate=trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        optimizer=trial.suggest_categorical("optimizer", space.optimizers),
        batch_size=trial.suggest_categorical("batch_size", space.batch_sizes),
        batch_norm=trial.suggest_categorical("batch_norm", space.batch_norm),
        weight_decay=trial.suggest_float("weight_decay", *space.weight_decay, log=True),
        standardize=trial.suggest_categorical("standardize", space.standardize),
        lr_schedule=trial.suggest_categorical("lr_schedule", space.lr_schedules),
        label_smoothing=trial.suggest_float("label_smoothing", *space.label_smoothing),
    )


def params_from_stored(stored: dict[str, Any], space: SearchSpace) -> ModelParams:
    """Rebuild the ModelParams of a stored trial through the same path the search used."""
    return sample_params(optuna.trial.FixedTrial(stored), space)


def to_trial_params(params: ModelParams) -> dict[str, Any]:
    """The inverse of `sample_params`: the Optuna parameter dict of a ModelParams."""
    stored: dict[str, Any] = {"n_layers": params.n_layers}
    for i, (units, rate) in enumerate(zip(params.units, params.dropouts, strict=True)):
        stored[f"n_units_l{i}"] = units
        stored[f"dropout_l{i}"] = rate
    stored.update(
        activation=params.activation,
        learning_rate=params.learning_rate,
        optimizer=params.optimizer,
        batch_size=params.batch_size,
        batch_norm=params.batch_norm,
        weight_decay=params.weight_decay,
        standardize=params.standardize,
        lr_schedule=params.lr_schedule,
        label_smoothing=params.label_smoothing,
    )
    return stored
