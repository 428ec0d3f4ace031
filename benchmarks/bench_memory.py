"""Resident memory of one search worker over many small trials, two ways side by side.

- `service`: `python -m search.run` as users run it (one worker, SQLite study): training
  happens in worker processes that hand over to a fresh one every `--trials-per-process`
  trials. RSS is the sum over the run's processes (the `search.run` process, its current worker
  and multiprocessing's helper), read from /proc when each trial's line is printed.
- `in-process`: the service's `Objective`, sampler and pruner driven by `study.optimize` in
  this very process with `gc_after_trial=True`, for as many trials: what TensorFlow keeps per
  trained model when a process never ends.

Data: Fashion-MNIST (2,000 training-file images, one epoch a trial) from --data-dir / env
SEARCH_DATA_DIR; without the files there, synthetic images in-process. The figure that matters
is the growth from trial 10 (start-up, graph tracing and caches done) to the highest RSS seen
after it.

    python benchmarks/bench_memory.py --quick      # 12 trials per mode: about 1.5 minutes
    python benchmarks/bench_memory.py              # 200 trials per mode: about 12 minutes
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import common
import numpy as np

from search.cli import positive_int
from search.study.studyfile import PRESETS

CHECKPOINTS = (1, 10, 50, 100, 200)
BASE_TRIAL = 10  # growth is measured from here: warm-up allocations are not a leak
PRESET_TRIALS_PER_PROCESS = PRESETS["fashion"].trials_per_process
QUICK = {"n_trials": 12, "limit_train": 1000, "trials_per_process": 5}
FULL = {"n_trials": 200, "limit_train": 2000, "trials_per_process": PRESET_TRIALS_PER_PROCESS}
MODES = ("service", "in-process")
TRIAL_LINE = re.compile(r"\] trial +\d+ (\w+)")  # search.study.progress's line per trial
BYTES_PER_MB = 1_000_000


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident set size in MB (10^6 bytes); 0 when it has just ended."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / BYTES_PER_MB  # the kernel's kB = KiB
    except (FileNotFoundError, ProcessLookupError):
        if pid != "self":
            return 0.0
    try:
        import psutil
    except ImportError:
        raise SystemExit("no /proc/self/status and no psutil: cannot read RSS here") from None
    return psutil.Process().memory_info().rss / BYTES_PER_MB


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, from the parent ids in /proc/*/stat."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def measure_service(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[float], float, list[str], str]:
    """`python -m search.run` for n trials: RSS of all its processes as each trial ends."""
    has_files = common.has_fashion(args.data_dir)
    command = common.search_run(
        f"sqlite:///{workdir / 'service.db'}",
        *("--n-trials", str(args.n_trials), "--max-epochs", "1"),
        *("--limit-train", str(args.limit_train), "--sampler", args.sampler),
        *("--seed", str(args.seed), "--timeout", "86400"),
        *("--trials-per-process", str(args.trials_per_process)),
        *("--workers", "1"),  # one worker, as the in-process mode (the default is two)
        *(["--data-dir", args.data_dir] if has_files else []),
        "--no-warm-start",  # the same sampled trials as the in-process mode, no 2x1024 start
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rss: list[float] = []
    states: list[str] = []
    before, tail = 0.0, []
    for line in process.stdout:
        tail = [*tail[-20:], line.rstrip()]
        if not before and line.startswith("study "):  # data loaded, storage open, no worker yet
            before = rss_mb(process.pid)
        match = TRIAL_LINE.search(line)
        if match:
            rss.append(rss_mb(process.pid) + sum(rss_mb(p) for p in descendants(process.pid)))
            states.append(match.group(1).lower())
            _print_checkpoint(len(rss), args.n_trials, rss[-1], "service")
    if process.wait() != 0 or len(rss) < args.n_trials:
        joined = "\n".join(tail)
        raise SystemExit(
            f"search.run ended with {process.returncode} after {len(rss)} trials:\n{joined}"
        )
    source = args.data_dir if has_files else "the service's default lookup"
    return rss, before, states, source


def _print_checkpoint(n: int, total: int, value: float, mode: str) -> None:
    if n in CHECKPOINTS or n == total:
        print(f"{mode}: trial {n}: RSS {value:.1f} MB", flush=True)


def load_data(args: argparse.Namespace):
    """Fashion-MNIST from --data-dir / SEARCH_DATA_DIR when it holds the files, else synthetic."""
    if not args.synthetic and common.has_fashion(args.data_dir):
        return common.load_fashion(args.data_dir, args.limit_train)
    if not args.synthetic:
        where = args.data_dir or "(no --data-dir, no SEARCH_DATA_DIR)"
        print(f"no Fashion-MNIST files in {where}: using synthetic data", flush=True)
    return common.synthetic_split(args.limit_train, seed=args.seed)


def measure_in_process(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[float], float, list[str], str]:
    """RSS after each trial, RSS before the first, each trial's state, and the data source."""
    import optuna

    from search.study.objective import Objective
    from search.study.resume import open_study
    from storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    config = PRESETS["fashion"].with_overrides(
        study_name="bench_memory",
        max_epochs=1,
        limit_train=args.limit_train,
        n_trials=args.n_trials,
        sampler=args.sampler,
        seed=args.seed,
        retrain=False,
    )
    data = load_data(args)
    if args.storage == "sqlite":
        storage = open_storage(
            f"sqlite:///{workdir / 'bench_memory.db'}", heartbeat_interval=config.heartbeat
        )
    else:
        storage = optuna.storages.InMemoryStorage()
    study = open_study(config, storage, data.source)
    objective = Objective(config, data)
    rss: list[float] = []
    states: list[str] = []

    def sample(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        rss.append(rss_mb())
        states.append(trial.state.name.lower())
        _print_checkpoint(len(rss), args.n_trials, rss[-1], "in-process")

    import tensorflow as tf

    before = rss_mb()
    study.optimize(
        objective,
        n_trials=args.n_trials,
        callbacks=[sample],
        catch=(MemoryError, tf.errors.ResourceExhaustedError),
        gc_after_trial=True,
    )
    return rss, before, states, data.source


def checkpoint_rows(curves: dict[str, list[float]]) -> list[list[str]]:
    """Per checkpoint trial: RSS and change since trial 10 of every mode."""
    n = min(len(rss) for rss in curves.values())
    marks = sorted({c for c in CHECKPOINTS if c <= n} | {n})
    rows = []
    for t in marks:
        row = [str(t)]
        for rss in curves.values():
            row += [f"{rss[t - 1]:.1f}", f"{rss[t - 1] - rss[min(BASE_TRIAL, n) - 1]:+.1f}"]
        rows.append(row)
    return rows


def growth_mb(rss: list[float]) -> float:
    """Highest RSS after trial 10 minus RSS at trial 10."""
    base = min(BASE_TRIAL, len(rss)) - 1
    return max(rss[base:]) - rss[base]


def slope_mb_per_trial(rss: list[float]) -> float:
    """Least-squares slope of RSS over trials BASE_TRIAL..n: the leak rate, if any."""
    tail = rss[min(BASE_TRIAL, len(rss)) - 1 :]
    if len(tail) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0])


def plot(curves: dict[str, list[float]], target_mb: float, path: Path, title: str) -> None:
    fig, ax = common.axes((7, 4))
    for (mode, rss), color in zip(curves.items(), ("tab:blue", "tab:orange"), strict=False):
        trials = np.arange(1, len(rss) + 1)
        ax.plot(trials, rss, marker=".", markersize=3, linewidth=1, color=color, label=mode)
        base = rss[min(BASE_TRIAL, len(rss)) - 1]
        ax.axhline(base + target_mb, color=color, linestyle="--", linewidth=0.8)
    ax.plot([], [], color="grey", linestyle="--", label=f"trial {BASE_TRIAL} + {target_mb:.0f} MB")
    common.save_plot(fig, ax, path, xlabel="trial", ylabel="resident memory (MB)", title=title)


def build_parser() -> argparse.ArgumentParser:
    parser = common.parser(
        "bench_memory.py",
        "Resident memory (RSS) of one search worker over N one-epoch trials, as the service "
        "runs them (python -m search.run, worker processes replaced every "
        "--trials-per-process trials) and in one never-ending process; prints RSS at "
        "trials 1, 10, 50, 100, 200 and the growth after trial 10 against a target, and "
        "plots RSS per trial. Exit status 1 when the first mode's growth exceeds the target.",
        quick=f"{QUICK['n_trials']} trials of {QUICK['limit_train']} images per mode, a fresh "
        f"worker process every {QUICK['trials_per_process']} trials",
        png="memory.png",
    )
    common.add_data_flags(
        parser,
        limit=str(FULL["limit_train"]),
        quick=QUICK["limit_train"],
        absent="when absent, in-process mode uses synthetic data and service mode "
        "search.run's own lookup",
    )
    common.add_plot_flag(parser, "memory.png", "RSS against trial number")
    parser.add_argument(
        "--n-trials",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"trials to run (default {FULL['n_trials']}, with --quick {QUICK['n_trials']})",
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="in-process mode only: use synthetic images even when the real files are there",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        help="service (search.run's worker processes) and/or in-process (default both)",
    )
    parser.add_argument(
        "--trials-per-process",
        metavar="N",
        type=positive_int,
        default=None,
        help="service mode: search.run's --trials-per-process (default the service's, "
        f"{PRESET_TRIALS_PER_PROCESS}; with --quick {QUICK['trials_per_process']})",
    )
    parser.add_argument(
        "--storage",
        choices=("sqlite", "memory"),
        default="sqlite",
        help="in-process mode: where the study lives: sqlite (a temp file, opened by "
        "storage.open_storage with the service's heartbeat) or memory (Optuna's "
        "InMemoryStorage). Default sqlite",
    )
    parser.add_argument(
        "--sampler",
        choices=("tpe", "random"),
        default="tpe",
        help="the service's sampler to use (default tpe, as search.run)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of sampler and Keras (default 0)"
    )
    parser.add_argument(
        "--target-mb",
        metavar="MB",
        type=float,
        default=300.0,
        help="largest acceptable RSS growth from trial 10 to the last trial, in MB (default 300)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    common.fill_defaults(args, QUICK, FULL)
    plot_path = common.plot_path(args, "memory.png")
    measures = {"service": measure_service, "in-process": measure_in_process}
    curves: dict[str, list[float]] = {}
    lines = []
    for mode in args.modes:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="bench_memory_") as folder:
            rss, before, states, source = measures[mode](args, Path(folder))
        curves[mode] = rss
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
        how = (
            f"python -m search.run, a fresh worker process every {args.trials_per_process} "
            "trials, RSS summed over its processes"
            if mode == "service"
            else f"this process, study in {args.storage} storage"
        )
        lines.append(
            f"- {mode}: {how}; {time.monotonic() - started:.0f} s; {before:.1f} MB before "
            f"trial 1; trials: {counts}; data {source}"
        )
    n = min(len(rss) for rss in curves.values())
    base = min(BASE_TRIAL, n)
    conditions = (
        f"One worker, {n} trials of preset fashion with max_epochs=1, "
        f"limit_train={args.limit_train}, {args.sampler} sampler and hyperband pruner. RSS "
        "(VmRSS, MB = 10^6 bytes) after each trial:\n\n" + "\n".join(lines)
    )
    headers = ["after trial"]
    for mode in curves:
        headers += [f"{mode} RSS MB", f"{mode} change since trial {base} MB"]
    verdicts = []
    growth_lines = []
    for mode, rss in curves.items():
        growth = growth_mb(rss)
        verdicts.append("PASS" if growth <= args.target_mb else "FAIL")
        growth_lines.append(
            f"- {mode}: growth from trial {base} to the highest RSS after it: {growth:+.1f} MB "
            f"(target <= {args.target_mb:.0f} MB): {verdicts[-1]}; fitted slope "
            f"{slope_mb_per_trial(rss):+.3f} MB per trial"
        )
    table = common.markdown_table(headers, checkpoint_rows(curves))
    body = [conditions, "", table, "", *growth_lines]
    if plot_path is not None:
        plot(curves, args.target_mb, plot_path, f"RSS of one worker over {n} one-epoch trials")
        body.append(f"\nplot: {plot_path.name}")
    common.report("bench_memory", "\n".join(body), args)
    return 0 if verdicts[0] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
