"""The objective: train one sampled network, report validation accuracy every epoch, let the
pruner decide, and record what the dashboard and the retrain stage need on the trial."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import keras
import optuna
from optuna.trial import TrialState
from optuna_integration import KerasPruningCallback

from models import ModelParams, build_dense, trainable_params
from models.task import CLASSIFICATION, TASKS, Task
from search.data import Split
from search.study.config import EVAL_BATCH, StudyConfig
from search.study.pareto import (
    CURVE,
    PARETO_RUNG_PRUNERS,
    RUNG_FACTOR,
    RUNG_STATES,
    outranked_at_rung,
    should_stop,
    trial_curves,
)
from search.study.seeds import trial_seed
from search.study.space import sample_params

MONITOR = "val_accuracy"  # classification's validation figure (config.task_spec.monitor)

# Called after every epoch with (trial number, 1-based epoch, Keras logs): progress display.
EpochHook = Callable[[int, int, dict[str, float]], None]


class Diverged(RuntimeError):
    """A trial without one finite validation figure. Optuna records it as failed (the worker's
    optimize loop catches it) and the search goes on."""


class _EpochHookCallback(keras.callbacks.Callback):
    def __init__(self, trial_number: int, hook: EpochHook) -> None:
        super().__init__()
        self._trial_number, self._hook = trial_number, hook

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._hook(self._trial_number, epoch + 1, dict(logs or {}))


class Objective:
    """Callable for `study.optimize`. Holds the data, so it is loaded once per worker process.

    Intermediate values are reported by optuna-integration's KerasPruningCallback at step =
    the 1-based epoch (`EpochPruningCallback`), so a pruner's resource counts epochs trained:
    Hyperband's min_resource=1 puts its first rung after the first epoch. The trial's value is
    its best validation figure over its epochs: accuracy (classification) or RMSE (regression).
    A Pareto study's trial returns (that figure, its trainable parameters) and is stopped by
    the front rule (search/study/pareto.py) instead of an Optuna pruner.

    `deadline` (time.time() seconds, the run's timeout): a trial still training then stops at
    the end of its epoch and completes with its best epoch so far (stop_reason "timeout"), as
    early stopping would, so that a run ends within an epoch of its timeout.
    """

    def __init__(
        self,
        config: StudyConfig,
        data: Split,
        *,
        epoch_hook: EpochHook | None = None,
        deadline: float | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.epoch_hook = epoch_hook
        self.deadline = deadline

    def __call__(self, trial: optuna.trial.BaseTrial) -> float | tuple[float, int]:
        if isinstance(trial, optuna.trial.Trial):
            # Which process runs it, set before anything else can fail or take time:
            # `search.status` shows it, and a killed worker's trial is found by it.
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = sample_params(trial, self.config.space)
        # A fresh graph per trial keeps memory flat; the seed makes a trial repeatable.
        keras.backend.clear_session(free_memory=True)
        keras.utils.set_random_seed(trial_seed(self.config.seed, trial.number))
        model = build_model(params, self.data, self.config.max_epochs)
        n_params = trainable_params(model)
        trial.set_user_attr("n_params", n_params)

        history = keras.callbacks.History()
        # Order matters: History records the epoch before the pruning callback may raise.
        task = self.config.task_spec
        callbacks: list[keras.callbacks.Callback] = [history]
        if isinstance(trial, optuna.trial.Trial) and self.config.pareto:
            prune = self.config.pruner != "none"  # --pruner none: the curve is only stored
            rungs = self.config.pruner in PARETO_RUNG_PRUNERS
            callbacks.append(
                ParetoPruningCallback(
                    trial, n_params, task, self.config.max_epochs, prune=prune, rungs=rungs
                )
            )
        elif isinstance(trial, optuna.trial.Trial):
            callbacks.append(EpochPruningCallback(trial, task.monitor))
        else:  # FixedTrial (tests, retrain): report per epoch, nothing to prune.
            callbacks.append(_ReportCallback(trial, task.monitor))
        callbacks += [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(
                monitor=task.monitor, mode=task.mode, patience=self.config.patience
            ),
        ]
        deadline = StopAtDeadline(self.deadline)
        callbacks.append(deadline)
        if self.epoch_hook is not None:
            callbacks.append(_EpochHookCallback(trial.number, self.epoch_hook))

        start = time.perf_counter()
        try:
            model.fit(
                self.data.x_train,
                self.data.y_train,
                validation_data=(self.data.x_val, self.data.y_val),
                validation_batch_size=EVAL_BATCH,
                epochs=self.config.max_epochs,
                batch_size=params.batch_size,
                callbacks=callbacks,
                verbose=0,
            )
        except optuna.TrialPruned:
            _record(trial, history.history, time.perf_counter() - start, "pruned", task)
            raise
        logs = history.history
        n_epochs = len(logs.get(task.monitor, []))
        if n_epochs == 0 or any(not math.isfinite(v) for v in logs.get("loss", [])):
            reason = "diverged"  # TerminateOnNaN may stop a trial before its first epoch ends
        elif n_epochs >= self.config.max_epochs:
            reason = "max_epochs"
        elif deadline.reached:
            reason = "timeout"
        else:
            reason = "early_stopping"
        best = _record(trial, logs, time.perf_counter() - start, reason, task)
        if best is None:
            raise Diverged("no finite validation figure: training diverged before an epoch ended")
        return (best, n_params) if self.config.pareto else best


def build_model(params: ModelParams, data: Split, max_epochs: int) -> keras.Model:
    """The network of `params` for `data`, as the search trains it (and the retrain again):
    standardisation statistics from the training part, a schedule spanning max_epochs, and
    for regression the training targets' scale."""
    steps_per_epoch = math.ceil(len(data.x_train) / params.batch_size)
    regression = data.task == "regression"
    return build_dense(
        params,
        data.input_shape,
        data.n_classes,
        feature_stats=data.feature_stats if params.standardize else None,
        decay_steps=steps_per_epoch * max_epochs,
        task=TASKS[data.task],
        target_stats=data.target_stats if regression else None,
    )


class EpochPruningCallback(KerasPruningCallback):
    """optuna-integration's pruning callback, reporting at step = 1-based epoch.

    Keras counts epochs from 0; a pruner's `min_resource` and rungs count epochs trained. With
    the 0-based step, the first Hyperband rung (min_resource=1) came after the second epoch.
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        super().on_epoch_end(epoch + 1, logs)


class StopAtDeadline(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends at or after `deadline`
    (time.time() seconds; None: never). `reached` tells whether it did."""

    def __init__(self, deadline: float | None) -> None:
        super().__init__()
        self.deadline, self.reached = deadline, False

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if self.deadline is not None and time.time() >= self.deadline:
            self.reached = True
            self.model.stop_training = True


class _ReportCallback(keras.callbacks.Callback):
    """Report the per-epoch validation figure to a trial that cannot prune (FixedTrial)."""

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str = MONITOR) -> None:
        super().__init__()
        self._trial, self._monitor = trial, monitor

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if logs and self._monitor in logs:
            self._trial.report(float(logs[self._monitor]), step=epoch + 1)


def _record(
    trial: optuna.trial.BaseTrial,
    logs: dict[str, list[float]],
    seconds: float,
    reason: str,
    task: Task = CLASSIFICATION,
) -> float | None:
    """Store the per-trial attributes; return the best validation figure (None: no epoch)."""
    figures = [float(v) for v in logs.get(task.monitor, [])]
    attrs: dict[str, Any] = {
        "epochs_run": len(figures),
        "train_seconds": round(seconds, 3),
        "stop_reason": reason,
    }
    best = None
    best_index = task.best_index(figures)
    if best_index is not None:
        best = figures[best_index]
        val_loss = float(logs.get("val_loss", [math.nan] * len(figures))[best_index])
        attrs.update(
            best_epoch=best_index + 1,
            val_loss=val_loss if math.isfinite(val_loss) else None,
        )
    if reason == "pruned":
        attrs["pruned_at_epoch"] = len(figures)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return best


class ParetoPruningCallback(keras.callbacks.Callback):
    """Store the trial's curve every epoch and stop it when `should_stop` says so, or, with
    rungs=True, when `outranked_at_rung` does (with prune=False only store it: the unpruned
    Pareto search, `--pruner none`)."""

    def __init__(
        self,
        trial: optuna.trial.Trial,
        n_params: int,
        task: Task,
        max_epochs: int,
        *,
        prune: bool = True,
        rungs: bool = False,
    ) -> None:
        super().__init__()
        self._trial, self._n_params, self._task, self._prune = trial, n_params, task, prune
        self._max_epochs, self._rungs = max_epochs, rungs
        self._curve: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = (logs or {}).get(self._task.monitor)
        if value is None:
            return
        self._curve.append(float(value))
        self._trial.set_user_attr(CURVE, self._curve)
        if not self._prune or len(self._curve) >= self._max_epochs:
            return  # after the last epoch the trial completes anyway: its values inform TPE
        others = trial_curves(self._trial.study, exclude=self._trial.number)
        finished = [curve for state, curve in others if state == TrialState.COMPLETE]
        if should_stop(self._curve, self._n_params, finished, self._task):
            raise optuna.TrialPruned(
                f"epoch {len(self._curve)}: a trial of at most {self._n_params:,} parameters "
                "already beats this one's best possible figure"
            )
        # Failed trials (and the retries that inherit their curve while WAITING) do not count.
        everyone = [curve for state, curve in others if state in RUNG_STATES]
        if self._rungs and outranked_at_rung(self._curve, self._n_params, everyone, self._task):
            raise optuna.TrialPruned(
                f"epoch {len(self._curve)}: not among the best 1/{RUNG_FACTOR} of the trials "
                "that reached this epoch (figure against parameters)"
            )
