"""An ensemble of the retrained models: members chosen on validation, tested once.

Greedy forward selection (Caruana et al. 2004, without replacement): start from the model with
the best validation accuracy, then add, one at a time, the model whose addition raises the
averaged probabilities' validation accuracy most; stop when no addition raises it. Every choice
reads validation predictions only; the test set is predicted once, for the chosen members, and
their averaged probabilities give the ensemble's test figures. It stays dense-only: an average
of dense networks' outputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import keras
import numpy as np

from search.data import Split
from search.evaluation.metrics import figures, regression_figures, run_line
from search.study.config import EVAL_BATCH
from storage.results import ResultStore, RunRecord

KIND = "ensemble"
RAW_COLUMNS_MODEL = "from_raw_columns"  # a table's saved model: FeatureSpace, then "dense"


def val_score(mean_prediction: np.ndarray, y_val: np.ndarray) -> float:
    """Higher is better: accuracy of averaged probabilities, or minus the RMSE of averaged
    regression outputs (float targets)."""
    if np.issubdtype(y_val.dtype, np.floating):
        error = np.reshape(mean_prediction, -1) - y_val
        return -float(np.sqrt(np.mean(error.astype(np.float64) ** 2)))
    return float(np.mean(mean_prediction.argmax(axis=1) == y_val))


def choose_members(val_probabilities: list[np.ndarray], y_val: np.ndarray) -> list[int]:
    """Indices of the members, in the order they were added (validation figures only)."""
    if not val_probabilities:
        return []

    def accuracy(members: list[int]) -> float:
        return val_score(np.mean([val_probabilities[i] for i in members], axis=0), y_val)

    order = sorted(range(len(val_probabilities)), key=lambda i: (-accuracy([i]), i))
    chosen, best = [order[0]], accuracy([order[0]])
    while True:
        candidates = [i for i in order if i not in chosen]
        if not candidates:
            return chosen
        gains = [(accuracy([*chosen, i]), -rank, i) for rank, i in enumerate(candidates)]
        score, _, pick = max(gains)
        if score <= best:
            return chosen
        chosen.append(pick)
        best = score


def dense_part(model: keras.Model) -> keras.Model:
    """The network behind a table's FeatureSpace (saved models take raw columns; the split's
    arrays are encoded already), or the model itself."""
    return model.get_layer("dense") if model.name == RAW_COLUMNS_MODEL else model


def ensemble_stage(
    study_name: str,
    runs: list[RunRecord],
    split: Split,
    test: tuple[np.ndarray, np.ndarray] | None,
    results: ResultStore,
    *,
    log: Callable[[str], None] = print,
) -> RunRecord | None:
    """Build, test once and store the ensemble of `runs` (the retrained trial models).

    Stored like a run (kind "ensemble", seed 0) under a key of its candidate models, so running
    the stage again with the same models changes nothing.
    """
    runs = [run for run in runs if run.model_path]
    if len(runs) < 2:
        return None
    key = hashlib.sha256(
        "|".join(sorted(f"{r.config_key}:{r.seed}" for r in runs)).encode()
    ).hexdigest()[:16]
    if results.has(study_name, KIND, key, 0):
        log("ensemble: already built, kept")
        return None
    models = [dense_part(keras.models.load_model(run.model_path, compile=False)) for run in runs]
    val = [m.predict(split.x_val, batch_size=EVAL_BATCH, verbose=0) for m in models]
    members = choose_members(val, split.y_val)
    val_mean = np.mean([val[i] for i in members], axis=0)
    regression = split.task == "regression"
    tested: dict[str, float | None] = dict.fromkeys(
        ("test_accuracy", "test_loss", "precision", "recall")
    )
    if test is not None:  # the test set, predicted once, for the chosen members only
        x_test, y_test = test
        averaged = np.mean(
            [models[i].predict(x_test, batch_size=EVAL_BATCH, verbose=0) for i in members], axis=0
        )
        tested.update(
            regression_figures(averaged, y_test) if regression else figures(averaged, y_test)
        )
    score = val_score(val_mean, split.y_val)
    chosen = [runs[i] for i in members]
    record = RunRecord(
        study_name=study_name,
        kind=KIND,
        config_key=key,
        label=f"ensemble of {len(chosen)}",
        seed=0,
        params={"members": [{"label": r.label, "seed": r.seed} for r in chosen]},
        val_accuracy=None if regression else score,
        val_rmse=-score if regression else None,
        n_params=sum(r.n_params for r in chosen),
        epochs_run=0,
        max_epochs=0,
        seconds=0.0,
        history={},
        **tested,
    )
    results.add(record)
    figure = f"RMSE {-score:.4g}" if regression else f"accuracy {score:.4f}"
    log(
        f"ensemble: {len(chosen)} of {len(runs)} models chosen on validation ({figure}); "
        f"{run_line(record)}"
    )
    return record
