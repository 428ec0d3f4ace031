"""Retrain configurations with several seeds and evaluate each model once on the test set.

One harness serves both the search's best trials and the documented baselines, so their figures
are comparable: same loader, split, seeds and evaluation code. A run trains on the search's
training split with early stopping on its validation split (best weights restored), then predicts
the official test set once; every figure comes from that one prediction.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import tensorflow as tf

from models import trainable_params
from search.data import Split, load_test
from search.evaluation.candidates import Candidate
from search.evaluation.ensemble import RAW_COLUMNS_MODEL, ensemble_stage
from search.evaluation.metrics import evaluate, run_line
from search.evaluation.render import counted
from search.study.config import EVAL_BATCH, StudyConfig
from storage.artifacts import attach_artifact, default_artifact_dir
from storage.results import ResultStore, RunRecord

# A machine claims a run before training it; the claim lasts this long past its last epoch, so
# a crashed machine's run is taken over by another one after at most this many seconds.
LEASE_SECONDS = 600
OWNER = f"{socket.gethostname()}:{os.getpid()}"
# The lines of a run this process does not train: found stored, or claimed by another.
KEPT, LEFT = "already retrained, kept", "left to it"
PARTIAL = ".partial-"  # a model being written: .partial-PID-XXXX.keras, renamed when whole


def train_and_evaluate(
    candidate: Candidate,
    seed: int,
    split: Split,
    test: tuple[np.ndarray, np.ndarray] | None,
    *,
    extra: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train one seed of a candidate and measure it; returns the model and its figures.

    `test` None: a study without a test file; the run then has validation figures only."""
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    model = candidate.build()
    callbacks = [keras.callbacks.TerminateOnNaN(), *(extra or [])]
    if candidate.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=candidate.monitor,
                mode="max" if candidate.monitor.endswith("accuracy") else "min",
                patience=candidate.patience,
                restore_best_weights=True,
            )
        )
    start = time.perf_counter()
    history = model.fit(
        split.x_train,
        split.y_train,
        validation_data=(split.x_val, split.y_val),
        validation_batch_size=EVAL_BATCH,
        epochs=candidate.max_epochs,
        batch_size=candidate.batch_size,
        callbacks=callbacks,
        verbose=0,
    ).history
    seconds = time.perf_counter() - start
    best_index = _best_epoch_index(history.get(candidate.monitor, []), candidate.monitor)
    figures: dict[str, Any] = dict.fromkeys(("test_accuracy", "test_loss", "precision", "recall"))
    if test is not None:
        figures.update(evaluate(model, *test))
    kept = best_index if candidate.patience else -1  # the weights EarlyStopping restored
    for name in ("accuracy", "rmse"):  # the validation figure of the kept weights
        values = history.get(f"val_{name}")
        if values and best_index is not None:
            figures[f"val_{name}"] = float(values[kept])
    figures.update(
        n_params=trainable_params(model),
        epochs_run=len(history.get("val_loss", [])),
        best_epoch=None if best_index is None else best_index + 1,
        seconds=round(seconds, 3),
        history={k: [float(v) for v in values] for k, values in history.items()},
    )
    return model, figures


class _RenewClaim(keras.callbacks.Callback):
    """Renew this machine's claim on the run after every epoch (see storage.results). A
    database outage does not stop training: the lease still runs, the next epoch renews."""

    def __init__(self, renew: Callable[[], bool], log: Callable[[str], None] = print) -> None:
        super().__init__()
        self._renew, self._log, self._warned = renew, log, False

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if not self._renew() and not self._warned:
            self._warned = True
            self._log(
                f"retrain: database unreachable after epoch {epoch + 1}, claim not renewed; "
                "training goes on (results are stored once it is back)"
            )


class _EpochLines(keras.callbacks.Callback):
    """A line when a model starts training and one after each epoch with its validation
    figures, so a long run shows it is alive (a shallow baseline can train for many minutes).
    Keras' own verbose=2 lines do not name the run and show training figures. These read only
    `fit`'s logs: no test figure is printed before a model is trained."""

    SHOWN = ("val_accuracy", "val_rmse", "val_loss")  # in this order, those the model reports

    def __init__(self, prefix: str, candidate: Candidate, log: Callable[[str], None]) -> None:
        super().__init__()
        self._prefix, self._candidate, self._log = prefix, candidate, log
        self._start = 0.0

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self._start = time.perf_counter()
        candidate = self._candidate
        stop = (
            ""
            if candidate.patience is None
            else f", early stop after {counted(candidate.patience, 'epoch')} without a "
            f"{candidate.monitor} gain"
        )
        self._log(
            f"{self._prefix}: training {trainable_params(self.model):,} params, at most "
            f"{counted(candidate.max_epochs, 'epoch')}{stop}"
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        # Named as the search's progress names them (val_acc).
        shown = " ".join(
            f"{name.replace('accuracy', 'acc')} {logs[name]:.4f}"
            for name in self.SHOWN
            if name in logs
        )
        self._log(
            f"{self._prefix}: epoch {epoch + 1}/{self._candidate.max_epochs} {shown}, "
            f"{time.perf_counter() - self._start:.0f} s"
        )


def _say(line: str) -> None:
    """Print at once: a retrain's output is often piped to a log, which Python buffers."""
    print(line, flush=True)


def _dead_here(owner: str) -> bool:
    """`owner` ("host:pid") is a process of this machine that no longer runs."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _best_epoch_index(values: list[float], monitor: str) -> int | None:
    """The epoch EarlyStopping restored (the first best one); None without an epoch."""
    if not values:
        return None
    sign = -1.0 if monitor.endswith("accuracy") else 1.0  # argmin of the signed figure
    signed = [sign * v if math.isfinite(v) else math.inf for v in values]
    return int(np.argmin(signed))


def run_candidates(
    candidates: list[Candidate],
    *,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    seeds: list[int],
    split: Split,
    test: tuple[np.ndarray, np.ndarray] | None,
    results: ResultStore,
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    model_dir: Path,
    log: Callable[[str], None] = _say,
) -> int:
    """Train every (candidate, seed) not already stored; returns how many runs it trained."""
    trained = 0
    total = len(candidates) * len(seeds)
    done = 0
    for candidate in candidates:
        for seed in seeds:
            done += 1
            prefix = f"[{done}/{total}] {candidate.label} seed {seed}"
            run = (study.study_name, candidate.kind, candidate.config_key, seed)
            if results.has(*run):
                log(f"{prefix}: {KEPT}")
                continue
            holder = results.claim(*run, OWNER, LEASE_SECONDS)
            # This machine's own process that died (kill -9, a crash): its run is resumed now
            # rather than after its lease.
            if (
                holder is not None
                and _dead_here(holder)
                and results.take_over(*run, holder, OWNER, LEASE_SECONDS)
            ):
                log(f"{prefix}: its process {holder} is gone; retrained here")
                holder = None
            if holder is not None:
                log(f"{prefix}: being retrained by {holder}, {LEFT}")
                continue
            renew = _RenewClaim(lambda run=run: results.renew(*run, OWNER, LEASE_SECONDS), log=log)
            lines = _EpochLines(prefix, candidate, log)
            model, figures = train_and_evaluate(candidate, seed, split, test, extra=[lines, renew])
            model_path = _save_model(model, model_dir, candidate, seed, split)
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
            if not results.add(record):
                log(f"{prefix}: stored meanwhile by another machine; this copy is not kept")
                continue
            trained += 1
            log(
                f"{prefix}: {run_line(record)}, {record.epochs_run}/{candidate.max_epochs} epochs, "
                f"{record.seconds:.0f} s"
            )
    return trained


def _save_model(
    model: keras.Model, folder: Path, candidate: Candidate, seed: int, split: Split
) -> Path:
    """Keras' native format; written to a temporary name first so a crash leaves no half file.

    A table's model is saved behind its fitted FeatureSpace, so it takes raw columns (a dict
    of arrays); `signature.json` beside it maps class ids back to the data file's labels and,
    for a table, each column to the model's input name (README, Using a saved model).
    """
    folder.mkdir(parents=True, exist_ok=True)
    signature = folder / "signature.json"
    if not signature.exists():
        columns = None
        if split.columns is not None:
            from search.data.tables import input_names

            columns = input_names(split.columns)
        text = json.dumps({"classes": list(split.classes), "columns": columns}, indent=1)
        signature.write_text(text + "\n")
    if split.encoder is not None:
        # An uncompiled copy behind the FeatureSpace: predicting needs no training settings, and
        # plain Keras then loads it without this project's loss class.
        network = model.__class__.from_config(model.get_config())
        network.set_weights(model.get_weights())
        encoded = split.encoder.get_encoded_features()
        model = keras.Model(split.encoder.get_inputs(), network(encoded), name=RAW_COLUMNS_MODEL)
    safe = candidate.label.replace(" ", "-").replace("/", "_")
    path = folder / f"{safe}-{candidate.config_key[:8]}-seed{seed}.keras"
    with tempfile.NamedTemporaryFile(
        dir=folder, prefix=f"{PARTIAL}{os.getpid()}-", suffix=".keras", delete=False
    ) as handle:
        partial = Path(handle.name)
    try:
        model.save(partial)
        partial.replace(path)  # atomic: the final name only ever holds a whole model
    except OSError as exc:
        if exc.errno == errno.ENOSPC and not exc.filename:  # name the file for the message
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise
    finally:
        partial.unlink(missing_ok=True)
    return path


def remove_dead_partials(folder: Path) -> list[Path]:
    """Half-written models left by this machine's processes that were killed while saving."""
    removed = []
    for path in folder.glob(f"{PARTIAL}*.keras"):
        pid = path.name[len(PARTIAL) :].split("-", 1)[0]
        if pid.isdigit() and _dead_here(f"{socket.gethostname()}:{pid}"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def retrain_stage(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    split: Split,
    candidates: list[Candidate],
    *,
    log: Callable[[str], None] = _say,
) -> int:
    """Train `candidates` with the configured seeds, storing runs, models and artifacts, then
    their ensemble; returns how many runs this process trained.

    With config.workers > 1 and more than one run to train, they are trained by that many
    local processes at a time (search/evaluation/parallel.py); this process then trains only
    what they left."""
    folder, model_dir = _folders(config, study)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = _seeds(config)
    log(
        f"retrain: {counted(len(candidates), 'configuration')} x {counted(len(seeds), 'seed')}; "
        f"models and artifacts in {folder}"
    )
    for path in remove_dead_partials(model_dir) if model_dir.is_dir() else []:
        log(f"retrain: removed {path.name}, half-written by a process that was killed")
    results = ResultStore(config.storage)
    try:
        runs = [(c, seed) for c in candidates for seed in seeds]
        stored = sum(results.has(study.study_name, c.kind, c.config_key, s) for c, s in runs)
        parallel = config.workers > 1 and len(runs) - stored > 1
        if parallel:
            from search.evaluation.parallel import retrain_in_processes

            if stored:
                log(f"retrain: {stored} of {len(runs)} runs already retrained, kept")
            trials = [c.trial for c in candidates if c.trial is not None]
            retrain_in_processes(config, trials if config.mode == "search" else None, log)
        test = test_set(config, split)
        trained = train_runs(
            config, study, storage, split, candidates, test, log=log, quiet=parallel
        )
        keys = {c.config_key for c in candidates if c.kind == "trial"}
        if keys:  # the models of the configurations just chosen on validation, every seed
            chosen = [r for r in results.runs(study.study_name, "trial") if r.config_key in keys]
            ensemble_stage(study.study_name, chosen, split, test, results, log=log)
        return trained
    finally:
        results.close()


def train_runs(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    split: Split,
    candidates: list[Candidate],
    test: tuple[np.ndarray, np.ndarray] | None,
    *,
    log: Callable[[str], None] = _say,
    quiet: bool = False,
) -> int:
    """Train every (candidate, configured seed) not stored yet, in this process; returns how
    many it trained. `quiet`: no line for a run it does not train (the processes of a parallel
    retrain share the runs; each says only what it trains)."""
    # Every run builds a new model, so tf.function retraces by design (as in the workers).
    tf.get_logger().setLevel("ERROR")
    folder, model_dir = _folders(config, study)
    results = ResultStore(config.storage)
    try:
        return run_candidates(
            candidates,
            study=study,
            storage=storage,
            seeds=_seeds(config),
            split=split,
            test=test,
            results=results,
            artifact_store=optuna.artifacts.FileSystemArtifactStore(folder),
            model_dir=model_dir,
            log=(lambda line: None if line.endswith((KEPT, LEFT)) else log(line)) if quiet else log,
        )
    finally:
        results.close()


def test_set(config: StudyConfig, split: Split) -> tuple[np.ndarray, np.ndarray] | None:
    """The official test set: the only place it is read. None for a study file without one
    (its runs then have validation figures only)."""
    source = config.data_source()
    return load_test(source, split=split) if source.has_test else None


def _seeds(config: StudyConfig) -> list[int]:
    return [config.seed + i for i in range(config.seeds)]


def _folders(config: StudyConfig, study: optuna.Study) -> tuple[Path, Path]:
    """The artifact folder and, in it, the folder of the study's models."""
    folder = default_artifact_dir(config.storage, config.artifact_dir)
    return folder, folder / "models" / study.study_name
