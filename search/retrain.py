"""Retrain the best configurations with several seeds and evaluate them once on the test set.

One harness serves both the search's best trials and the documented baselines, so their figures
are comparable: same loader, split, seeds and evaluation code. A run trains on the search's
training split with early stopping on its validation split (best weights restored), then predicts
the official test set once; every figure comes from that one prediction.
"""

from __future__ import annotations

import hashlib
import json
import math
import mimetypes
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from models import build_dense
from search.config import StudyConfig
from search.data import Split
from search.objective import VALIDATION_BATCH  # one evaluation batch for search and retrain
from search.space import params_from_stored
from storage.results import ResultStore, RunRecord
from storage.urls import default_artifact_dir

DASHBOARD_TRIAL_ARTIFACTS = "dashboard:artifacts:"  # optuna_dashboard.artifact._backend's key


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


def config_key(params: dict[str, Any]) -> str:
    """A stable key of a parameter dict: equal configurations share it across trials."""
    canonical = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def select_top(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best complete trials with distinct configurations (best first)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen: list[FrozenTrial] = []
    seen: set[str] = set()
    for trial in sorted(complete, key=lambda t: (-t.value, t.number)):
        key = config_key(trial.params)
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


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
                build=lambda p=params: build_dense(p, split.input_shape),
                batch_size=params.batch_size,
                max_epochs=config.max_epochs,
                patience=config.patience,
                trial=trial,
            )
        )
    return candidates


def macro_precision_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple:
    """Unweighted means over classes; a class never predicted counts as precision 0."""
    precisions, recalls = [], []
    for c in range(n_classes):
        true_pos = np.sum((y_pred == c) & (y_true == c))
        predicted, actual = np.sum(y_pred == c), np.sum(y_true == c)
        precisions.append(true_pos / predicted if predicted else 0.0)
        recalls.append(true_pos / actual if actual else 0.0)
    return float(np.mean(precisions)), float(np.mean(recalls))


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One prediction pass over the test set; loss as Keras computes it (probabilities clipped)."""
    probabilities = model.predict(x, batch_size=VALIDATION_BATCH, verbose=0)
    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    precision, recall = macro_precision_recall(y, predicted, probabilities.shape[1])
    return {
        "test_accuracy": float(np.mean(predicted == y)),
        "test_loss": float(-np.mean(np.log(picked))),
        "precision": precision,
        "recall": recall,
    }


def train_and_evaluate(
    candidate: Candidate, seed: int, split: Split, test: tuple[np.ndarray, np.ndarray]
) -> tuple[keras.Model, dict[str, Any]]:
    """Train one seed of a candidate and measure it; returns the model and its figures."""
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    model = candidate.build()
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if candidate.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=candidate.patience, restore_best_weights=True
            )
        )
    start = time.perf_counter()
    history = model.fit(
        split.x_train,
        split.y_train,
        validation_data=(split.x_val, split.y_val),
        validation_batch_size=VALIDATION_BATCH,
        epochs=candidate.max_epochs,
        batch_size=candidate.batch_size,
        callbacks=callbacks,
        verbose=0,
    ).history
    seconds = time.perf_counter() - start
    val_losses = [v if math.isfinite(v) else math.inf for v in history.get("val_loss", [])]
    best_index = int(np.argmin(val_losses)) if val_losses else None
    figures = evaluate(model, *test)
    figures.update(
        n_params=int(model.count_params()),
        epochs_run=len(val_losses),
        best_epoch=None if best_index is None else best_index + 1,
        val_accuracy=None
        if best_index is None
        else float(history["val_accuracy"][best_index if candidate.patience else -1]),
        seconds=round(seconds, 3),
        history={k: [float(v) for v in values] for k, values in history.items()},
    )
    return model, figures


def run_candidates(
    candidates: list[Candidate],
    *,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    seeds: list[int],
    split: Split,
    test: tuple[np.ndarray, np.ndarray],
    results: ResultStore,
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    model_dir: Path,
    log: Callable[[str], None] = print,
) -> int:
    """Train every (candidate, seed) not already stored; returns how many runs it trained."""
    trained = 0
    total = len(candidates) * len(seeds)
    done = 0
    for candidate in candidates:
        for seed in seeds:
            done += 1
            prefix = f"[{done}/{total}] {candidate.label} seed {seed}"
            if results.has(study.study_name, candidate.kind, candidate.config_key, seed):
                log(f"{prefix}: already retrained, kept")
                continue
            model, figures = train_and_evaluate(candidate, seed, split, test)
            model_path = _save_model(model, model_dir, candidate, seed)
            artifact_id = attach_artifact(
                artifact_store, storage, study.study_name, model_path, candidate.trial
            )
            record = RunRecord(
                study_name=study.study_name,
                kind=candidate.kind,
                config_key=candidate.config_key,
                label=candidate.label,
                seed=seed,
                params=candidate.params,
                trial_number=None if candidate.trial is None else candidate.trial.number,
                max_epochs=candidate.max_epochs,
                model_path=str(model_path.resolve()),
                artifact_id=artifact_id,
                **figures,
            )
            results.add(record)
            trained += 1
            log(
                f"{prefix}: test accuracy {record.test_accuracy:.4f}, loss {record.test_loss:.4f},"
                f" {record.epochs_run}/{candidate.max_epochs} epochs, {record.seconds:.0f} s"
            )
    return trained


def attach_artifact(
    store: optuna.artifacts.FileSystemArtifactStore,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    path: Path,
    trial: FrozenTrial | None = None,
) -> str:
    """Put a file in the artifact store and list it on its trial (or on the study).

    optuna.artifacts.upload_artifact cannot attach to a finished trial (its attributes are
    frozen), and a retrain runs long after its trial finished. optuna-dashboard also lists a
    trial's artifacts from study system attributes named "dashboard:artifacts:<trial_id>:<id>"
    (the key its own uploads used before Optuna had artifacts), so that key links the file to
    its trial in the dashboard. The file is written before the key: a key never points nowhere.
    """
    study_id = storage.get_study_id_from_name(study_name)
    if trial is None:
        study = optuna.load_study(study_name=study_name, storage=storage)
        return optuna.artifacts.upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study
        )
    artifact_id = str(uuid.uuid4())
    with open(path, "rb") as handle:
        store.write(artifact_id, handle)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    meta = {
        "artifact_id": artifact_id,
        "filename": path.name,
        "mimetype": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        "encoding": None,
    }
    storage.set_study_system_attr(
        study_id, f"{DASHBOARD_TRIAL_ARTIFACTS}{trial_id}:{artifact_id}", json.dumps(meta)
    )
    return artifact_id


def trial_artifacts(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> list:
    """The artifact metadata `attach_artifact` linked to trial `number`."""
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    prefix = f"{DASHBOARD_TRIAL_ARTIFACTS}{trial_id}:"
    attrs = storage.get_study_system_attrs(study_id)
    # The dashboard marks a deleted artifact by setting its key to null.
    metas = [json.loads(value) for key, value in attrs.items() if key.startswith(prefix)]
    return [meta for meta in metas if meta]


def _save_model(model: keras.Model, folder: Path, candidate: Candidate, seed: int) -> Path:
    """Keras' native format; written to a temporary name first so a crash leaves no half file."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = candidate.label.replace(" ", "-").replace("/", "_")
    path = folder / f"{safe}-{candidate.config_key[:8]}-seed{seed}.keras"
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".keras", delete=False) as handle:
        partial = Path(handle.name)
    model.save(partial)
    partial.replace(path)
    return path


def retrain_stage(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    split: Split,
    candidates: list[Candidate],
    *,
    log: Callable[[str], None] = print,
) -> int:
    """Train `candidates` with the configured seeds, storing runs, models and artifacts."""
    from search.data import load_test

    folder = default_artifact_dir(config.storage, config.artifact_dir)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [config.seed + i for i in range(config.seeds)]
    log(
        f"retrain: {len(candidates)} configurations x {len(seeds)} seeds; models and artifacts "
        f"in {folder}"
    )
    test = load_test(config.dataset, config.data_dir)  # the only place the test set is read
    results = ResultStore(config.storage)
    try:
        return run_candidates(
            candidates,
            study=study,
            storage=storage,
            seeds=seeds,
            split=split,
            test=test,
            results=results,
            artifact_store=optuna.artifacts.FileSystemArtifactStore(folder),
            model_dir=folder / "models" / study.study_name,
            log=log,
        )
    finally:
        results.close()


def baseline_candidates(config: StudyConfig, split: Split) -> list[Candidate]:
    """The documented configurations to reproduce, each capped at --max-epochs.

    The cap is part of the key: a reproduction allowed 3 epochs is not the same result as one
    allowed 20, and the report shows how many epochs each was allowed and ran.
    """
    from search.baselines import select_for_reproduction

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
            )
        )
    return candidates
