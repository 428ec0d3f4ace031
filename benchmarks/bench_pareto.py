"""The Pareto search's default pruning against the same search without pruning, at one budget.

Runs `python -m search.run --study fashion --pareto` (the service as users run it, no retrain)
on a fresh SQLite study per run, twice per repeat: "pruned", with the default pruner (the front
rule and the rungs of search/study/pareto.py), and "no pruning", with `--pruner none` (curves
stored, nothing stopped), alternating which arm goes first. Every figure
is read from the study's database at the same wall budget, counted from the start of the first
trial (worker start-up is left out, the same for both arms):
- the hypervolume of the validation front (loss = 1 - validation accuracy, and log10 of the
  trainable parameters; reference point 50% accuracy, 10^7.5 parameters), at six points of the
  budget and at its end;
- trials finished (complete + pruned) and epochs trained in the budget, and trials per hour.
A run is ended (its process group stopped) SLACK seconds after its budget: trials still
running then would not count, and letting them finish cost about 6 minutes a run.

A full run is 3 repeats of a 15-minute budget per arm (90 minutes); --quick is a 2,000-image
slice with 2-epoch trials for 30 s per arm, which the tests run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

from search.cli import positive_int

QUICK = {"repeats": 1, "budget": 30.0, "limit_train": 2000, "max_epochs": 2}
FULL = {"repeats": 3, "budget": 900.0, "limit_train": None, "max_epochs": None}
ARMS = ("pruned", "no pruning")
REFERENCE = (0.5, 7.5)  # (1 - accuracy, log10 parameters): a front point must beat both
CHECKPOINTS = 6
SLACK = 15.0  # seconds past the budget before a run is ended: its last tells land
HANG_SECONDS = 4 * 3600  # a run never takes this long: search.run hangs
HEADERS = (
    "repeat",
    "arm",
    "order",
    *[f"HV at {i}/{CHECKPOINTS}" for i in range(1, CHECKPOINTS)],
    "HV at budget",
    "trials",
    "pruned",
    "epochs",
    "trials/h",
    "front",
    "load (1 min, at end)",
)


def hypervolume(points: list[tuple[float, int]]) -> float:
    """Hypervolume of (validation accuracy, parameters) points against REFERENCE, through
    Optuna's own routine (the one its hypervolume-history plot uses)."""
    import math

    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    losses = [(1.0 - acc, math.log10(size)) for acc, size in points]
    inside = [p for p in losses if p[0] < REFERENCE[0] and p[1] < REFERENCE[1]]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.array(inside), np.array(REFERENCE)))


def one_run(args, arm: str, seed: int) -> dict:
    """One `search.run --pareto` of `args.budget` seconds; its figures from the database."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pareto-"))
    url = f"sqlite:///{folder / 'studies.db'}"
    command = [sys.executable, "-m", "search.run", "--study", "fashion", "--pareto"]
    command += ["--storage", url, "--no-retrain", "--seed", str(seed), "--n-trials", "100000"]
    command += ["--timeout", str(args.budget)]
    if arm == "no pruning":
        command += ["--pruner", "none"]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.limit_train:
        command += ["--limit-train", str(args.limit_train)]
    if args.max_epochs:
        command += ["--max-epochs", str(args.max_epochs)]
    log = folder / "search.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            command,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, with its workers: see _stop
        ) as process,
    ):
        try:
            ended_at_budget = _wait(process, folder / "studies.db", args.budget)
        except KeyboardInterrupt:
            _stop(process)
            raise
    if process.returncode != 0 and not ended_at_budget:
        tail = "\n".join(log.read_text().strip().splitlines()[-15:])
        raise SystemExit(f"bench_pareto: search.run exited {process.returncode}:\n{tail}")
    return measure(url, arm, seed, args.budget)


def _wait(process: subprocess.Popen, database: Path, budget: float) -> bool:
    """Wait for `process`; end it once `budget` seconds (and a little slack) have passed since
    its first trial started, since nothing finished later is counted. True if it was ended."""
    launched, first_trial = time.monotonic(), None
    while process.poll() is None:
        if time.monotonic() > launched + HANG_SECONDS:
            _stop(process)
            raise SystemExit(f"bench_pareto: search.run still running after {HANG_SECONDS} s")
        if first_trial is None and _trial_started(database):
            first_trial = time.monotonic()
        if first_trial is not None and time.monotonic() > first_trial + budget + SLACK:
            _stop(process)
            return True
        time.sleep(1)
    return False


def _trial_started(database: Path) -> bool:
    import sqlite3

    if not database.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            query = "SELECT 1 FROM trials WHERE datetime_start IS NOT NULL LIMIT 1"
            return connection.execute(query).fetchone() is not None
    except sqlite3.Error:  # the schema is still being made, or a writer holds the lock
        return False


def _stop(process: subprocess.Popen) -> None:
    """End a run's search.run and its worker processes (their own process group): at its
    budget, or unfinished (then the run is discarded). A signal, not Ctrl-C: a shell's
    background job ignores SIGINT."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sent)
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue


def measure(url: str, arm: str, seed: int, budget: float) -> dict:
    """The figures of one run's study at `url`, `budget` seconds from its first trial's start."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name="fashion-pareto", storage=url)
    trials = [t for t in study.trials if t.datetime_start is not None]
    origin = min(t.datetime_start for t in trials)

    def by(seconds: float) -> list:
        return [
            t
            for t in trials
            if t.datetime_complete is not None
            and (t.datetime_complete - origin).total_seconds() <= seconds
        ]

    history = []
    for i in range(1, CHECKPOINTS + 1):
        finished = by(budget * i / CHECKPOINTS)
        points = [(t.values[0], t.values[1]) for t in finished if t.state == TrialState.COMPLETE]
        history.append(hypervolume(points))
    finished = [t for t in by(budget) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    complete = [(t.values[0], t.values[1]) for t in finished if t.state == TrialState.COMPLETE]
    front = [p for p in complete if not any(_dominates(q, p) for q in complete)]
    return {
        "arm": arm,
        "seed": seed,
        "history": history,
        "trials": len(finished),
        "pruned": sum(t.state == TrialState.PRUNED for t in finished),
        "epochs": sum(t.user_attrs.get("epochs_run", 0) for t in finished),
        "trials_per_hour": len(finished) / budget * 3600,
        "front": len(set(front)),
        "load1": os.getloadavg()[0],
    }


def _dominates(a: tuple[float, int], b: tuple[float, int]) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and a != b


def row(repeat: int, order: int, r: dict) -> list[str]:
    return [
        str(repeat),
        r["arm"],
        str(order),
        *[f"{value:.4f}" for value in r["history"]],
        str(r["trials"]),
        str(r["pruned"]),
        str(r["epochs"]),
        f"{r['trials_per_hour']:.0f}",
        str(r["front"]),
        f"{r['load1']:.2f}",
    ]


def summary(results: list[dict]) -> list[str]:
    def mean(arm: str, key: str) -> float:
        return statistics.fmean(r[key] for r in results if r["arm"] == arm)

    def final(arm: str) -> list[float]:
        return [r["history"][-1] for r in results if r["arm"] == arm]

    rule, plain = ARMS
    ratio = mean(rule, "trials_per_hour") / max(mean(plain, "trials_per_hour"), 1e-9)
    pairs = [a - b for a, b in zip(final(rule), final(plain), strict=True)]
    return [
        f"- trials per hour, mean: pruned {mean(rule, 'trials_per_hour'):.0f}, no pruning "
        f"{mean(plain, 'trials_per_hour'):.0f} ({ratio:.2f}x; target >= 3x)",
        f"- final hypervolume, mean: pruned {statistics.fmean(final(rule)):.4f}, no pruning "
        f"{statistics.fmean(final(plain)):.4f}; paired difference per repeat "
        f"{', '.join(f'{d:+.4f}' for d in pairs)} (target: pruned at least as large)",
        f"- epochs trained, mean: pruned {mean(rule, 'epochs'):.0f}, no pruning "
        f"{mean(plain, 'epochs'):.0f}",
    ]


def _killed(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds as Ctrl-C does: one_run ends its search.run


def main() -> None:
    made = common.parser(
        "bench_pareto.py",
        __doc__.splitlines()[0],
        quick="one repeat on a 2,000-image slice, 2-epoch trials, 30 s per arm",
    )
    common.add_data_flags(
        made, limit="all", quick=QUICK["limit_train"], absent="search.run's own lookup"
    )
    made.add_argument("--repeats", type=positive_int, default=None, help="repeats (default 3)")
    made.add_argument(
        "--budget", type=float, default=None, help="wall seconds per run (default 900)"
    )
    made.add_argument(
        "--max-epochs", type=positive_int, default=None, help="epochs a trial may run (preset)"
    )
    args = made.parse_args()
    common.fill_defaults(args, QUICK, FULL)
    results, rows = [], []
    started = time.time()
    # A kill (SIGTERM) or Ctrl-C records the repeats that finished, and says so.
    signal.signal(signal.SIGTERM, _killed)
    stopped = ""
    try:
        for repeat in range(args.repeats):
            arms = ARMS if repeat % 2 == 0 else ARMS[::-1]  # balanced: each goes first in turn
            for order, arm in enumerate(arms, start=1):
                print(f"repeat {repeat + 1}/{args.repeats}: {arm} ...", flush=True)
                results.append(one_run(args, arm, seed=repeat))
                rows.append(row(repeat + 1, order, results[-1]))
                print(common.text_table(HEADERS, [rows[-1]]), flush=True)
    except KeyboardInterrupt:
        complete = len(results) // len(ARMS)
        results, rows = results[: complete * len(ARMS)], rows[: complete * len(ARMS)]
        stopped = f"stopped by hand after {complete} of {args.repeats} repeats"
        print(f"\n{stopped}", flush=True)
        if not complete:
            raise SystemExit(130) from None
    body = [
        f"`python -m search.run --study fashion --pareto --no-retrain` against the same with "
        f"`--pruner none`, fresh SQLite study per run, {args.repeats} repeats (seed = repeat "
        f"- 1, alternating order), a budget of {args.budget:.0f} s per run counted from the "
        "first trial's start"
        + (f", --limit-train {args.limit_train}" if args.limit_train else ", full training file")
        + (f", --max-epochs {args.max_epochs}" if args.max_epochs else ", preset max epochs")
        + f"; {(time.time() - started) / 60:.0f} minutes in all"
        + (f" ({stopped}: the unfinished repeat is left out)" if stopped else "")
        + ". HV: hypervolume of the "
        f"validation front (1 - accuracy, log10 parameters; reference {REFERENCE}).",
        "",
        common.markdown_table(HEADERS, rows),
        "",
        *summary(results),
    ]
    common.report("bench_pareto", "\n".join(body), args)


if __name__ == "__main__":
    main()
