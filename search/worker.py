"""The search stage: one worker's optimize loop, and the local worker processes that run it.

Every worker is the same loop: load the data once, open the shared storage with heartbeats,
optimize until the study-wide target of finished trials or the timeout. Workers on other
machines are simply more runs of the same command against the same database.

Training always happens in spawned worker processes, never in the process of `search.run`
itself: each runs `trials_per_process` trials and is replaced by a fresh one, because
TensorFlow keeps a few MB of every model it has trained until its process ends.
"""

from __future__ import annotations

import copy
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from search.config import StudyConfig
from search.data import Split
from search.errors import StorageError
from storage.urls import mask_secrets

DB_WAIT_SECONDS = 120  # how long a worker waits for a database that went away
RECYCLE = 75  # exit status of a worker process that ran its share of trials
MAX_RESTARTS = 3  # worker processes killed by a signal are replaced this many times per slot
_DB_ERRORS = (optuna.exceptions.StorageInternalError, SQLAlchemyError)


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
) -> bool:
    """Optimize until the study-wide target, the timeout, or `max_trials` trials run by this
    process, whichever comes first.

    `run_start` is (time.time(), finished trials) when the run began, default now: the timeout
    counts from there. Returns True when only `max_trials` stopped it: the caller goes on in a
    fresh process.

    A database outage stops the loop, not the worker: it waits up to DB_WAIT_SECONDS for the
    server and carries on. The trial that was running is failed by the heartbeat of whichever
    worker looks next, and its configuration retried; finished trials are already committed.
    """
    import tensorflow as tf

    from search.objective import Objective
    from search.progress import Progress
    from search.study import FINISHED, count_finished

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
        bar=config.workers == 1,
        run_start=run_start,
    )
    objective = Objective(config, data, epoch_hook=progress.on_epoch)
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
    left = _seconds_left(deadline)
    return share.reached and count_finished(study) < config.n_trials and (left is None or left > 0)


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


def summary(study: optuna.Study, seconds: float, prefix: str = "") -> None:
    """What the search stage did, for the end of a run."""
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


def _worker_main(config: StudyConfig, index: int, run_start: tuple[float, int]) -> None:
    """Entry point of one worker process (spawned: a fresh interpreter).

    Exits with RECYCLE after config.trials_per_process trials, so that its parent starts a
    fresh process in its place; 2 with one line on stderr for an error the user can act on.
    """
    from search.errors import UsageError
    from search.run import PROG, open_everything

    _limit_threads(config.workers)
    prefix = _prefix(config, index)
    try:
        study, storage, data, where = open_everything(config, worker_index=index)
        more = search_stage(
            config,
            study,
            storage,
            data,
            where,
            prefix=prefix,
            run_start=run_start,
            max_trials=config.trials_per_process,
        )
    except UsageError as exc:
        print(f"{prefix}{PROG}: error: {mask_secrets(str(exc), config.storage)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(RECYCLE if more else 0)


def _prefix(config: StudyConfig, index: int) -> str:
    return f"[w{index}] " if config.workers > 1 else ""


def run_search(
    config: StudyConfig, study: optuna.Study, storage: optuna.storages.BaseStorage
) -> int:
    """The search stage of a run: its header, the worker processes, its summary; exit status."""
    from search.study import config_changes, count_finished

    finished = count_finished(study)
    print(
        f"search: {finished} finished trials, target {config.n_trials}; sampler "
        f"{config.sampler}, pruner {config.pruner}, at most {config.max_epochs} epochs a trial",
        flush=True,
    )
    for change in config_changes(study, config):
        print(f"note: this run differs from the study's recorded config: {change}")
    if finished >= config.n_trials:
        print(
            f"the study already has {finished} finished trials (target {config.n_trials}); "
            "nothing to search. Raise --n-trials to search further."
        )
        summary(study, 0.0)
        return 0
    started = time.time()
    code = run_workers(config, study, storage, (started, finished))
    summary(study, time.time() - started)
    return code


def run_workers(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    run_start: tuple[float, int],
) -> int:
    """Run config.workers worker processes on this machine until the search is over.

    `run_start` is (time.time(), finished trials) when the run began. Each worker process runs
    at most config.trials_per_process trials and is then replaced by a fresh one, which holds
    the memory of a long search to that of its last few trials. When a worker process is
    killed by a signal (the OOM killer, kill -9), its running trial is failed and queued for a
    retry at once (no need to wait for its heartbeat to go stale), and the process is replaced,
    up to MAX_RESTARTS times per worker.

    Ctrl-C reaches every process of the terminal's group: each marks its running trial failed
    and stops. A SIGINT sent to this process alone is passed on to the workers.
    """
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker_main, args=(config, index, run_start), name=f"search-worker-{index}"
        )
        process.start()
        return process

    running = {index: start(index) for index in range(config.workers)}
    if config.workers > 1:
        pids = [p.pid for p in running.values()]
        print(f"started {config.workers} workers: pids {pids}", flush=True)
    failed: dict[str, int] = {}
    restarts = dict.fromkeys(running, 0)
    try:
        while running:
            multiprocessing.connection.wait([p.sentinel for p in running.values()])
            for index, process in list(running.items()):
                if process.exitcode is None:
                    continue
                if process.exitcode == RECYCLE:
                    running[index] = start(index)
                    print(
                        f"{_prefix(config, index)}{config.trials_per_process} trials run; going "
                        "on in a fresh process (it frees the memory TensorFlow keeps)",
                        flush=True,
                    )
                    continue
                if _crashed(process.exitcode):
                    lost = fail_trials_of(study, storage, process.pid)
                    print(
                        f"{_prefix(config, index)}worker process {process.pid} killed by signal "
                        f"{-process.exitcode}; trials failed and queued for a retry: {lost}",
                        file=sys.stderr,
                        flush=True,
                    )
                    if restarts[index] < MAX_RESTARTS:
                        restarts[index] += 1
                        running[index] = start(index)
                        continue
                del running[index]
                if process.exitcode != 0:
                    failed[process.name] = process.exitcode
    except KeyboardInterrupt:
        for process in running.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGINT)
        for process in running.values():
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        raise
    if failed and config.workers > 1:
        stopped = ", ".join(f"{name} (exit {code})" for name, code in failed.items())
        print(f"workers that stopped with an error: {stopped}", file=sys.stderr)
    if failed:
        code = next(iter(failed.values()))
        return code if code > 0 else 128 - code  # a shell's status for "killed by signal N"
    return 0


def fail_trials_of(
    study: optuna.Study, storage: optuna.storages.BaseStorage, pid: int | None
) -> list[int]:
    """Fail the running trials of a dead local worker process and queue their retries.

    What Optuna's fail_stale_trials does for a trial whose heartbeat went stale, done at once
    for a process known to be dead: the same state change, the same retry callback.
    """
    me = f"{socket.gethostname()}:{pid}"
    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        mine = trial.user_attrs.get("worker") == me
        if mine and storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            lost.append(trial)
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial in lost:
        if retry is not None:
            retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return [trial.number for trial in lost]


def _crashed(exitcode: int) -> bool:
    """Killed by a signal other than Ctrl-C or a polite stop: the OOM killer, kill -9, a crash."""
    return exitcode < 0 and -exitcode not in (signal.SIGINT, signal.SIGTERM)
