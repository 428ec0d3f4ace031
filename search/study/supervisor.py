"""The local worker processes of a run: start, recycle, replace the crashed, stop on Ctrl-C.

Training always happens in spawned worker processes, never in the process of `search.run`
itself: each runs `trials_per_process` trials and is replaced by a fresh one, because
TensorFlow keeps a few MB of every model it has trained until its process ends. Workers on
other machines are simply more runs of the same command against the same database.
"""

from __future__ import annotations

import copy
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from search.errors import USER_ERRORS, Terminated, stop_on_sigterm
from search.study.config import StudyConfig
from search.study.devices import assign, describe, visible_gpus, worker_environment
from search.study.progress import Events, SharedBar, say
from search.study.session import PROG, open_everything
from storage.rdb import retry_callback
from storage.urls import mask_secrets

RECYCLE = 75  # exit status of a worker process that ran its share of trials
MAX_RESTARTS = 3  # worker processes killed by a signal are replaced this many times per slot


def threads_per_worker(n_workers: int) -> int:
    """TensorFlow threads of each of n_workers local workers: the machine's cores split evenly."""
    return max(1, (os.cpu_count() or 1) // n_workers)


def limit_threads(n_workers: int) -> None:
    """Split the machine's cores between local workers (before TensorFlow runs any op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads_per_worker(n_workers))
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _worker_main(
    config: StudyConfig,
    index: int,
    run_start: tuple[float, int],
    device: str | None = None,
    events: Events | None = None,
) -> None:
    """Entry point of one worker process (spawned: a fresh interpreter).

    `device` is its GPU (search/study/devices.py), None on a machine without one; `events` the
    queue of the parent's SharedBar (several workers), None for a worker with its own bar.
    Exits with RECYCLE after config.trials_per_process trials, so that its parent starts a
    fresh process in its place; 2 with one line on stderr for an error the user can act on.
    """
    stop_on_sigterm()  # a polite stop fails the running trial, as Ctrl-C does
    logging.getLogger("optuna.study._optimize").addFilter(_no_traceback_on_stop)
    # Then, before TensorFlow is imported: it reads its device and memory growth only then.
    os.environ.update(worker_environment(device))
    # Imported here, in the spawned process: the loop loads TensorFlow, which the parent
    # process (that only supervises) never needs while the search runs.
    from search.study.loop import search_stage

    limit_threads(config.workers)
    prefix = _prefix(config, index)
    try:
        study, storage, data, where = open_everything(config)
        # Every trial starts with a full garbage collection (clear_session in the objective),
        # whose cost grows with every live object: TensorFlow, the imports and the data are
        # some 420,000 that live as long as the process. Frozen, collections skip them: 0.4 s
        # a trial became 0.1 s (2026-12-02, profiled on a 12,000-image Fashion-MNIST slice).
        gc.collect()
        gc.freeze()
        more = search_stage(
            config,
            study,
            storage,
            data,
            where,
            prefix=prefix,
            run_start=run_start,
            max_trials=config.trials_per_process,
            events=events,
        )
    except USER_ERRORS as exc:
        print(f"{prefix}{PROG}: error: {mask_secrets(str(exc), config.storage)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    sys.exit(RECYCLE if more else 0)


def _no_traceback_on_stop(record: logging.LogRecord) -> bool:
    """Optuna's "Trial N failed ... because of the following error: KeyboardInterrupt()" line
    stays; the traceback into TensorFlow under it, for a stop the user asked for, goes."""
    if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
        record.exc_info = None
    return True


def _prefix(config: StudyConfig, index: int) -> str:
    return f"[w{index}] " if config.workers > 1 else ""


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
    and stops. A SIGINT or SIGTERM sent to this process alone is passed on to the workers; one
    that does not stop within 30 s is sent SIGTERM, then SIGKILL 10 s later.
    """
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    devices = assign(visible_gpus(), config.workers)  # a replaced worker keeps its slot's GPU
    gpu_line = describe(devices)
    if gpu_line is not None:
        print(gpu_line, flush=True)
    # Several workers: one bar for all, in this process; their epochs and lines come to it.
    bar = None
    if config.workers > 1:
        bar = SharedBar(context.Queue(), target=config.n_trials, finished=run_start[1])
    events = None if bar is None else bar.events

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker_main,
            args=(config, index, run_start, devices[index], events),
            name=f"search-worker-{index}",
        )
        process.start()
        return process

    try:
        return _supervise(config, study, storage, start)
    finally:
        if bar is not None:
            bar.close()


def _supervise(
    config: StudyConfig,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    start: Callable[[int], multiprocessing.process.BaseProcess],
) -> int:
    """Wait on the worker processes that start(index) starts: recycle, replace, stop them.

    Its lines go through progress.say, above the SharedBar of several workers."""
    running = {index: start(index) for index in range(config.workers)}
    if config.workers > 1:
        pids = [p.pid for p in running.values()]
        say(f"started {config.workers} workers: pids {pids}")
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
                    say(
                        f"{_prefix(config, index)}{config.trials_per_process} trials run; going "
                        "on in a fresh process (it frees the memory TensorFlow keeps)"
                    )
                    continue
                if _crashed(process.exitcode):
                    lost = fail_trials_of(study, storage, process.pid)
                    say(
                        f"{_prefix(config, index)}worker process {process.pid} killed by signal "
                        f"{-process.exitcode}; trials failed and queued for a retry: {lost}",
                        sys.stderr,
                    )
                    if restarts[index] < MAX_RESTARTS:
                        restarts[index] += 1
                        running[index] = start(index)
                        continue
                del running[index]
                if process.exitcode != 0:
                    failed[process.name] = process.exitcode
    except KeyboardInterrupt as exc:
        pass_on_stop(list(running.values()), exc)
        raise
    if failed and config.workers > 1:
        stopped = ", ".join(f"{name} (exit {code})" for name, code in failed.items())
        say(f"workers that stopped with an error: {stopped}", sys.stderr)
    if failed:
        code = next(iter(failed.values()))
        return code if code > 0 else 128 - code  # a shell's status for "killed by signal N"
    return 0


def pass_on_stop(
    processes: list[multiprocessing.process.BaseProcess], exc: KeyboardInterrupt
) -> None:
    """Pass a stop on to this run's child processes and wait for them; one that does not stop
    within 30 s is sent SIGTERM, then SIGKILL 10 s later.

    The same signal goes on: a SIGTERM as SIGTERM, since a run started with SIGINT ignored
    (nohup, a shell script's background job) has children that ignore SIGINT too, and they
    would train on for the 30 s.
    """
    passed_on = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, passed_on)
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
        if process.is_alive():
            process.kill()


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
        if trial.user_attrs.get("worker") != me:
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                lost.append(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            # The heartbeat rule of another worker failed (and retried) it a moment earlier.
            continue
    retry = retry_callback(storage)
    for trial in lost:
        retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return [trial.number for trial in lost]


def _crashed(exitcode: int) -> bool:
    """Killed by a signal other than Ctrl-C or a polite stop: the OOM killer, kill -9, a crash."""
    return exitcode < 0 and -exitcode not in (signal.SIGINT, signal.SIGTERM)
