"""Resident memory of one worker over many small trials of the service's real objective.

The worker is this process: the service's `Objective`, sampler and pruner (`search.study`), the
study in a SQLite file opened by `storage.open_storage` with heartbeats (or in memory), driven by
`study.optimize` with `gc_after_trial=True` as `search.worker` does. RSS is read after every
trial from /proc/self/status (VmRSS; psutil only where /proc is missing). The figure that
matters is the growth from trial 10 (start-up, graph tracing and caches done) to the last trial.

    python benchmarks/bench_memory.py --quick
    python benchmarks/bench_memory.py --n-trials 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _record
import numpy as np

from search.cli import positive_int

CHECKPOINTS = (1, 10, 50, 100, 200)
BASE_TRIAL = 10  # growth is measured from here: warm-up allocations are not a leak
DEFAULT_DATA = _record.ROOT.parent / "shared" / "data" / "fashion-mnist"
QUICK_TRIALS = 20
BYTES_PER_MB = 1_000_000


def rss_mb() -> float:
    """This process's resident set size in MB (10^6 bytes)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / BYTES_PER_MB  # the kernel's kB = KiB
    except FileNotFoundError:
        pass
    try:
        import psutil
    except ImportError:
        raise SystemExit("no /proc/self/status and no psutil: cannot read RSS here") from None
    return psutil.Process().memory_info().rss / BYTES_PER_MB


def synthetic_split(n: int, seed: int = 0):
    """Images whose class is a bright horizontal band (as tests/conftest.py), split 90/10."""
    from search.data import Split, to_float

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 7, :] = 230
    n_val = max(1, round(n * 0.1))
    x = to_float(images)
    return Split(x[n_val:], labels[n_val:], x[:n_val], labels[:n_val], source="synthetic")


def load_data(args: argparse.Namespace):
    from search.data import load_split

    folder = Path(args.data_dir)
    if not args.synthetic and (folder / "train-images-idx3-ubyte.gz").is_file():
        return load_split("fashion", str(folder), limit_train=args.limit_train)
    if not args.synthetic:
        print(f"no Fashion-MNIST files in {folder}: using synthetic data", flush=True)
    return synthetic_split(args.limit_train, seed=args.seed)


def measure(args: argparse.Namespace, workdir: Path) -> tuple[list[float], float, list[str], str]:
    """RSS after each trial, RSS before the first, each trial's state, and the data source."""
    import optuna

    from search.config import PRESETS
    from search.objective import Objective
    from search.study import open_study
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
        if len(rss) in CHECKPOINTS or len(rss) == args.n_trials:
            print(f"trial {len(rss)}: RSS {rss[-1]:.1f} MB", flush=True)

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


def checkpoint_rows(rss: list[float]) -> list[list[str]]:
    n = len(rss)
    base = rss[min(BASE_TRIAL, n) - 1]
    marks = sorted({c for c in CHECKPOINTS if c <= n} | {n})
    return [[str(t), f"{rss[t - 1]:.1f}", f"{rss[t - 1] - base:+.1f}"] for t in marks]


def slope_mb_per_trial(rss: list[float]) -> float:
    """Least-squares slope of RSS over trials BASE_TRIAL..n: the leak rate, if any."""
    tail = rss[min(BASE_TRIAL, len(rss)) - 1 :]
    if len(tail) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0])


def plot(rss: list[float], target_mb: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    trials = np.arange(1, len(rss) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(trials, rss, marker=".", markersize=3, linewidth=1, label="RSS after the trial")
    base = rss[min(BASE_TRIAL, len(rss)) - 1]
    ax.axhline(
        base + target_mb,
        color="tab:red",
        linestyle="--",
        label=f"trial {BASE_TRIAL} + {target_mb:.0f} MB (target)",
    )
    ax.set_xlabel("trial")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_memory.py",
        description=(
            "Resident memory (RSS) of one search worker over N one-epoch trials of the "
            "service's objective, sampler and pruner; prints RSS at trials 1, 10, 50, 100, 200 "
            "and the growth from trial 10 to the end against a target, and plots RSS per trial. "
            "Exit status 1 when the growth exceeds the target."
        ),
    )
    parser.add_argument(
        "--n-trials",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"trials to run (default 200, with --quick {QUICK_TRIALS})",
    )
    parser.add_argument(
        "--limit-train",
        metavar="N",
        type=positive_int,
        default=2000,
        help="training-file images used, 10%% of them for validation (default 2000)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=os.environ.get("SEARCH_DATA_DIR") or str(DEFAULT_DATA),
        help="folder with the Fashion-MNIST IDX files (default env SEARCH_DATA_DIR, else "
        "../shared/data/fashion-mnist beside the repository); synthetic data when absent",
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="use synthetic images even when the real files are there",
    )
    parser.add_argument(
        "--storage",
        choices=("sqlite", "memory"),
        default="sqlite",
        help="where the study lives: sqlite (a temp file, opened by storage.open_storage "
        "with the service's heartbeat) or memory (Optuna's InMemoryStorage). Default sqlite",
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
    parser.add_argument(
        "--plot",
        metavar="PNG",
        type=Path,
        default=None,
        help="PNG of RSS against trial number (default benchmarks/memory.png; with --no-record "
        "no plot unless this is given)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a run of under 2 minutes: {QUICK_TRIALS} trials",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="print only; do not append to benchmarks/RESULTS.md nor write memory.png",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.n_trials = args.n_trials or (QUICK_TRIALS if args.quick else 200)
    if args.limit_train < 20:
        print("--limit-train must be at least 20 images (10% go to validation)", file=sys.stderr)
        return 2
    plot_path = args.plot or (None if args.no_record else _record.HERE / "memory.png")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as folder:
        rss, before, states, source = measure(args, Path(folder))
    seconds = time.monotonic() - started
    n = len(rss)
    base = rss[min(BASE_TRIAL, n) - 1]
    growth = rss[-1] - base
    verdict = "PASS" if growth <= args.target_mb else "FAIL"
    counts = {s: states.count(s) for s in sorted(set(states))}
    conditions = (
        f"One worker (this process), {n} trials of search.objective.Objective, preset fashion "
        f"with max_epochs=1, limit_train={args.limit_train} ({source}), {args.sampler} sampler "
        f"and hyperband pruner from search.study, study in {args.storage} storage, "
        f"study.optimize(gc_after_trial=True); {seconds:.0f} s in all. RSS from "
        f"/proc/self/status VmRSS after each trial, MB = 10^6 bytes; {before:.1f} MB before "
        f"trial 1. Trial outcomes: " + ", ".join(f"{c} {s}" for s, c in counts.items()) + "."
    )
    headers = ("after trial", "RSS MB", f"change since trial {min(BASE_TRIAL, n)} MB")
    table = _record.markdown_table(headers, checkpoint_rows(rss))
    summary = (
        f"growth from trial {min(BASE_TRIAL, n)} to trial {n}: {growth:+.1f} MB "
        f"(target <= {args.target_mb:.0f} MB): {verdict}; fitted slope "
        f"{slope_mb_per_trial(rss):+.3f} MB per trial"
    )
    body_lines = [conditions, "", table, "", summary]
    if plot_path is not None:
        plot(rss, args.target_mb, plot_path, f"RSS of one worker, {n} one-epoch trials ({source})")
        body_lines.append(f"\nplot: {plot_path.name}")
    body = "\n".join(body_lines)
    print()
    print(body)
    if not args.no_record:
        path = _record.append_results("bench_memory", body)
        print(f"\nappended to {path}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
