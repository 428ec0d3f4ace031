"""The search stage: one worker's optimize loop, and N local worker processes sharing a study.

Every worker is the same loop: load the data once, open the shared storage with heartbeats,
optimize until the study-wide target of finished trials or the timeout. Workers on other
machines are simply more runs of the same command against the same database.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import optuna
from sqlalchemy.exc import SQLAlchemyError

from search.config import StudyConfig
from search.data import Split
from search.errors import StorageError

DB_WAIT_SECONDS = 120  # how long a worker waits for a database that went away
_DB_ERRORS = (optuna.exceptions.StorageInternalError, SQLAlchemyError)


def search_stage(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    data: Split,
    where: str,
    *,
    prefix: str = "",
) -> None:
    """Optimize until the study has `config.n_trials` finished trials or the timeout passes.

    A database outage stops the loop, not the worker: it waits up to DB_WAIT_SECONDS for the
    server and carries on. The trial that was running is failed by the heartbeat of whichever
    worker looks next, and its configuration retried; finished trials are already committed.
    """
    import tensorflow as tf

    from search.objective import Objective
    from search.progress import Progress
    from search.study import FINISHED, config_changes, count_finished

    finished = count_finished(study)
    print(
        f"{prefix}search: {finished} finished trials, target {config.n_trials}; sampler "
        f"{config.sampler}, pruner {config.pruner}, at most {config.max_epochs} epochs a trial",
        flush=True,
    )
    for change in config_changes(study, config):
        print(f"{prefix}note: this run differs from the study's recorded config: {change}")
    started = time.monotonic()
    if finished >= config.n_trials:
        print(
            f"{prefix}the study already has {finished} finished trials (target "
            f"{config.n_trials}); nothing to search. Raise --n-trials to search further."
        )
        _summary(study, 0.0, where, prefix)
        return
    progress = Progress(
        target=config.n_trials,
        finished=finished,
        max_epochs=config.max_epochs,
        timeout=config.timeout,
        space=config.space,
        prefix=prefix,
        bar=config.workers == 1,
    )
    objective = Objective(config, data, epoch_hook=progress.on_epoch)
    stop_at_target = optuna.study.MaxTrialsCallback(config.n_trials, states=FINISHED)
    try:
        while True:
            left = None if config.timeout is None else config.timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                break
            try:
                study.optimize(
                    objective,
                    timeout=left,
                    callbacks=[progress, stop_at_target],
                    catch=(MemoryError, tf.errors.ResourceExhaustedError),
                    gc_after_trial=True,
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
    _summary(study, time.monotonic() - started, where, prefix)


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


def _summary(study: optuna.Study, seconds: float, where: str, prefix: str) -> None:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    parts = ", ".join(f"{n} {s.name.lower()}" for s, n in counts.items() if n)
    print(f"{prefix}done in {seconds:.0f} s: {len(trials)} trials in the study ({parts or 'none'})")
    try:
        best = study.best_trial
    except ValueError:
        print(f"{prefix}no completed trial yet")
        return
    print(
        f"{prefix}best: trial {best.number}, validation accuracy {best.value:.4f}, "
        f"{best.user_attrs.get('n_params', 0):,} params, params {best.params}"
    )
    print(f"{prefix}resume: run the same command again")


def _limit_threads(n_workers: int) -> None:
    """Split the machine's cores between local workers (before TensorFlow runs any op)."""
    import tensorflow as tf

    per_worker = max(1, (os.cpu_count() or 1) // n_workers)
    tf.config.threading.set_intra_op_parallelism_threads(per_worker)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _worker_main(config: StudyConfig, index: int) -> None:
    """Entry point of one local worker process (spawned: a fresh interpreter)."""
    from search.run import open_everything

    _limit_threads(config.workers)
    try:
        study, storage, data, where = open_everything(config, worker_index=index)
        search_stage(config, study, storage, data, where, prefix=f"[w{index}] ")
    except KeyboardInterrupt:
        sys.exit(130)


def run_workers(config: StudyConfig) -> int:
    """Start config.workers processes on this machine and wait for all of them.

    Ctrl-C reaches every process of the terminal's group: each marks its running trial failed
    and stops. A SIGINT sent to this process alone is passed on to the workers.
    """
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    processes = [
        context.Process(target=_worker_main, args=(config, i), name=f"search-worker-{i}")
        for i in range(config.workers)
    ]
    for process in processes:
        process.start()
    print(f"started {len(processes)} workers: pids {[p.pid for p in processes]}", flush=True)
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGINT)
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        raise
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        print(f"workers that stopped with an error: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
