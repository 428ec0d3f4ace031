"""The retrain on several local processes: `--workers N` trains N runs at a time.

Each process takes the runs it claims first (storage.results: a run is claimed before it is
trained, so no run is trained twice), with the machine's cores split between them as the search
workers split them: on a 2-core CPU two one-thread processes train more epochs a second than one
two-thread process (bench_workers). The parent only waits; afterwards it trains whatever a
process left (one killed, say) and averages the ensemble, as a one-process retrain does.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable

from optuna.trial import FrozenTrial

from search.errors import USER_ERRORS, Terminated, stop_on_sigterm
from search.study.config import StudyConfig
from search.study.devices import assign, visible_gpus, worker_environment
from search.study.session import PROG
from search.study.supervisor import limit_threads, pass_on_stop
from storage.urls import mask_secrets


def retrain_in_processes(
    config: StudyConfig, trials: list[FrozenTrial] | None, log: Callable[[str], None]
) -> None:
    """Train the retrain's runs in config.workers spawned processes and wait for them.

    `trials`: the search trials chosen for the retrain, or None for the documented baselines
    (config.mode "baselines"). A process that fails is reported, not fatal: its runs are left
    to the caller's own pass."""
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    devices = assign(visible_gpus(), config.workers)
    processes = [
        context.Process(
            target=_retrain_main,
            args=(config, trials, index, devices[index]),
            name=f"retrain-{index}",
        )
        for index in range(config.workers)
    ]
    for process in processes:
        process.start()
    log(f"retrain: {config.workers} processes, pids {[p.pid for p in processes]}")
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt as exc:
        # Ctrl-C reached the whole group; a signal sent to this process alone is passed on.
        pass_on_stop(processes, exc)
        raise
    for process in processes:
        if process.exitcode != 0:
            log(
                f"retrain: process {process.pid} stopped with exit status {process.exitcode}; "
                "the runs it left are trained here"
            )


def _retrain_main(
    config: StudyConfig, trials: list[FrozenTrial] | None, index: int, device: str | None
) -> None:
    """Entry point of one retrain process (spawned: a fresh interpreter)."""
    stop_on_sigterm()
    # Before TensorFlow is imported: it reads its device and memory growth only then.
    os.environ.update(worker_environment(device))
    limit_threads(config.workers)
    from search.evaluation.candidates import baseline_candidates, trial_candidates
    from search.evaluation.harness import test_set, train_runs
    from search.study.session import open_everything

    prefix = f"[r{index}] "
    try:
        study, storage, data, _ = open_everything(config)
        if trials is None:
            candidates = baseline_candidates(config, data)
        else:
            candidates = trial_candidates(trials, config, data)
        say = lambda line: _say(prefix + line)  # noqa: E731 - a one-line prefixer
        test = test_set(config, data)
        train_runs(config, study, storage, data, candidates, test, log=say, quiet=True)
    except USER_ERRORS as exc:
        print(f"{prefix}{PROG}: error: {mask_secrets(str(exc), config.storage)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:
        sys.exit(143 if isinstance(exc, Terminated) else 130)


def _say(line: str) -> None:
    print(line, flush=True)
