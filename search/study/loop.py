"""One worker's optimize loop: trials until the study-wide target, the timeout or its share.

A database outage stops the loop, not the worker: it waits for the server and carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import optuna
import tensorflow as tf
from sqlalchemy.exc import SQLAlchemyError

from search.data import Split
from search.errors import StorageError
from search.study.config import StudyConfig
from search.study.objective import Diverged, Objective
from search.study.progress import Events, Progress
from search.study.resume import FINISHED, count_finished
from storage.proxy_client import heartbeat, is_proxy

DB_WAIT_SECONDS = 120  # how long a worker waits for a database (or proxy) that went away
# grpc.RpcError: the storage proxy, or the database behind it, did not answer.
_DB_ERRORS = (optuna.exceptions.StorageInternalError, SQLAlchemyError, grpc.RpcError)


def search_stage(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    data: Split,
    where: str,
    *,
    prefix: str = "",
    run_start: tuple[float, int] | None = None,
    max_trials: int | None = None,
    events: Events | None = None,
) -> bool:
    """Optimize until the study-wide target, the timeout, or `max_trials` trials run by this
    process, whichever comes first.

    `run_start` is (time.time(), finished trials) when the run began, default now: the timeout
    counts from there. After it no trial starts, and running trials stop at the end of their
    epoch with their best epoch so far (stop_reason "timeout"), so the search ends within an
    epoch of it, however many workers share the machine.

    `events`: the queue of the parent's SharedBar, if it has one (several local workers), where
    this worker's progress goes instead of a bar of its own. Returns True when only
    `max_trials` stopped it: the caller goes on in a fresh process.

    A database outage stops the loop, not the worker: it waits up to DB_WAIT_SECONDS for the
    server and carries on. The trial that was running is failed by the heartbeat of whichever
    worker looks next, and its configuration retried; finished trials are already committed.
    """
    # Every trial builds a new model, so tf.function traces each time by design; TensorFlow's
    # "triggered tf.function retracing" warning every few trials would only be noise.
    tf.get_logger().setLevel("ERROR")
    finished = count_finished(study)
    if finished >= config.n_trials:  # another worker got there first
        return False
    run_start = run_start or (time.time(), finished)
    deadline = None if config.timeout is None else run_start[0] + config.timeout
    progress = Progress(
        target=config.n_trials,
        finished=finished,
        max_epochs=config.max_epochs,
        timeout=config.timeout,
        space=config.space,
        prefix=prefix,
        run_start=run_start,
        monitor=config.task_spec.monitor,
        events=events,
    )
    objective = Objective(config, data, epoch_hook=progress.on_epoch, deadline=deadline)
    if is_proxy(storage):
        objective = _beating(objective, storage, config.heartbeat)
    stop_at_target = optuna.study.MaxTrialsCallback(config.n_trials, states=FINISHED)
    share = _StopAfter(max_trials)
    try:
        while True:
            left = _seconds_left(deadline)
            if (left is not None and left <= 0) or share.reached:
                break
            try:
                study.optimize(
                    objective,
                    timeout=left,
                    callbacks=[progress, stop_at_target, share],
                    catch=(MemoryError, tf.errors.ResourceExhaustedError, Diverged),
                    # No gc_after_trial: the next trial's clear_session(free_memory=True)
                    # collects the last model anyway, and each full collection costs time.
                )
                break
            except Exception as exc:
                if not _caused_by_database(exc):
                    raise
                print(
                    f"{prefix}database error ({type(exc).__name__}); finished trials are stored."
                    f" Waiting up to {DB_WAIT_SECONDS} s for {where} to answer",
                    flush=True,
                )
                if not wait_for_database(storage, DB_WAIT_SECONDS):
                    raise StorageError(
                        f"database {where} unreachable for {DB_WAIT_SECONDS} s; finished trials "
                        "are stored, re-run the same command to resume"
                    ) from None
                print(f"{prefix}database is back; carrying on", flush=True)
                if count_finished(study) >= config.n_trials:
                    break
    finally:
        progress.close()
    left = _seconds_left(deadline)
    return share.reached and count_finished(study) < config.n_trials and (left is None or left > 0)


def _beating(
    objective: Objective, storage: optuna.storages.BaseStorage, interval: int
) -> Callable[[optuna.trial.Trial], float | tuple[float, int]]:
    """The objective, beating through the storage proxy while it runs: Optuna's gRPC client has
    no heartbeat of its own, and the proxy fails trials that stop beating."""

    def run(trial: optuna.trial.Trial) -> float | tuple[float, int]:
        with heartbeat(storage, trial._trial_id, interval):
            return objective(trial)

    return run


class _StopAfter:
    """Optuna callback: stop this process's optimize loop after `limit` trials (None: never)."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.count = limit, 0

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.count += 1
        if self.reached:
            study.stop()


def _seconds_left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.time()


def _caused_by_database(exc: BaseException) -> bool:
    """Whether a database error is anywhere in the exception's chain.

    Optuna does not always let the database error itself through: when the database goes away
    while a trial is being told, its clean-up hits an UnboundLocalError whose context is the
    StorageInternalError (optuna/study/_optimize.py, _run_trial).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _DB_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def wait_for_database(storage: optuna.storages.BaseStorage, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            storage.get_all_studies()
            return True
        except _DB_ERRORS:
            time.sleep(2)
    return False
