"""Both cores on one machine: one worker of all cores' threads against one worker per core,
training the same networks.

For each repeat, each arm runs `python -m search.run --study fashion --workers W` (W = 1, then
one per core; search.run gives each worker cores / W TensorFlow threads) on a fresh SQLite study
in which the same K configurations were enqueued: the service's warm start, then K - 1 drawn by
Optuna's RandomSampler from the service's space (seed = the repeat's). No pruning, no early stop
(patience = epochs), no warm start of its own, no retrain: every network trains exactly
--epochs epochs, in both arms. The arms alternate their order by repeat.

Figures per run: wall seconds from launch to exit (imports, data and the last network's tail
included: with two workers one may wait idle for the other's last network), the networks'
summed training seconds (the trials' `train_seconds`: `model.fit` alone), epochs, epochs per
second of wall. The headline is the paired throughput ratio over the same K networks:

    ratio = sum of training seconds with 1 worker / (sum with W workers / W)

that is, how many times the epochs per second of the machine W concurrent workers reach
against one worker, in steady state (both workers busy; start-up and the last network's tail
left out, they are in the wall column). Above 1: the split trains faster.

    python benchmarks/bench_workers.py --quick --no-record   # 2,000 images, 4 networks: ~1 min
    python benchmarks/bench_workers.py    # full file, 12 networks x 3 epochs, 2 repeats: ~25 min
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

from search.cli import positive_int
from search.study.supervisor import threads_per_worker

QUICK = {"repeats": 1, "limit_train": 2000, "networks": 4, "epochs": 2}
FULL = {"repeats": 2, "limit_train": None, "networks": 12, "epochs": 3}
HEADERS = (
    "repeat",
    "workers x threads",
    "order",
    "networks",
    "epochs",
    "train s (sum)",
    "wall s",
    "epochs/s (wall)",
    "load (1 min, at end)",
)


def configurations(n: int, seed: int) -> list[dict]:
    """The warm start, then n - 1 networks drawn at random from the service's space."""
    import optuna

    from search.study.config import StudyConfig
    from search.study.space import sample_params, to_trial_params
    from search.study.studyfile import PRESETS

    preset: StudyConfig = PRESETS["fashion"]
    drawn = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = [preset.warm_start_params()]
    for _ in range(n - 1):
        trial = drawn.ask()
        params.append(to_trial_params(sample_params(trial, preset.space)))
        drawn.tell(trial, 0.0)
    return params


def one_run(args, workers: int, params: list[dict]) -> dict:
    """search.run with `workers` workers over the enqueued `params`; its figures."""
    import optuna

    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    url = f"sqlite:///{folder / 'studies.db'}"
    # The study exists before search.run opens it: it records its configuration, finds the
    # queue and adds no warm start of its own.
    queued = optuna.create_study(study_name="fashion", storage=url, direction="maximize")
    for p in params:
        queued.enqueue_trial(p)
    flags = ["--workers", str(workers), "--pruner", "none", "--no-warm-start"]
    flags += ["--max-epochs", str(args.epochs), "--patience", str(args.epochs)]
    flags += ["--n-trials", str(len(params)), "--timeout", str(args.run_timeout)]
    if args.data_dir:
        flags += ["--data-dir", args.data_dir]
    if args.limit_train:
        flags += ["--limit-train", str(args.limit_train)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    done = subprocess.run(
        common.search_run(url, *flags), cwd=folder, capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench_workers: search.run exited {done.returncode}:\n{tail}")
    trials = optuna.load_study(study_name="fashion", storage=url).get_trials(deepcopy=False)
    # The enqueued networks only: an idle worker may start a drawn one as the last one trains.
    ours = [t for t in trials if t.number < len(params)]
    missing = [t.number for t in ours if "train_seconds" not in t.user_attrs]
    if len(ours) < len(params) or missing:
        raise SystemExit(f"bench_workers: networks {missing} did not train; see {folder}")
    return {
        "workers": workers,
        "threads": threads_per_worker(workers),
        "seconds": {t.number: t.user_attrs["train_seconds"] for t in ours},
        "epochs": sum(t.user_attrs.get("epochs_run", 0) for t in ours),
        "wall": wall,
        "load": load,
    }


def ratio(one: dict, split: dict) -> float:
    """The split's steady-state throughput over one worker's, on the same networks."""
    return sum(one["seconds"].values()) / (sum(split["seconds"].values()) / split["workers"])


def main(argv: list[str] | None = None) -> int:
    made = common.parser(
        "bench_workers.py",
        "One worker of all threads against one worker per core, on the same networks.",
        quick=f"{QUICK['limit_train']} images, {QUICK['networks']} networks x "
        f"{QUICK['epochs']} epochs, 1 repeat",
    )
    common.add_data_flags(
        made,
        limit="the full training file",
        quick=QUICK["limit_train"],
        absent="else the service's own lookup",
    )
    made.add_argument("--repeats", type=positive_int, default=None, help="default 2")
    made.add_argument(
        "--networks", type=positive_int, default=None, help="networks per run (default 12)"
    )
    made.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs per network (default 3)"
    )
    made.add_argument(
        "--run-timeout",
        type=positive_int,
        default=3600,
        help="seconds after which a run starts no more networks (default 3600)",
    )
    args = made.parse_args(argv)
    common.fill_defaults(args, QUICK, FULL)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    split = max(2, os.cpu_count() or 1)  # one worker per core
    rows, ratios = [], []
    for repeat in range(1, args.repeats + 1):
        params = configurations(args.networks, seed=repeat - 1)
        arms = [1, split] if repeat % 2 else [split, 1]
        runs = {}
        for order, workers in enumerate(arms, start=1):
            print(f"repeat {repeat}: {workers} worker(s), {len(params)} networks", flush=True)
            run = runs[workers] = one_run(args, workers, params)
            rows.append(
                [
                    repeat,
                    f"{workers} x {run['threads']}",
                    order,
                    len(run["seconds"]),
                    run["epochs"],
                    f"{sum(run['seconds'].values()):.1f}",
                    f"{run['wall']:.1f}",
                    f"{run['epochs'] / run['wall']:.3f}",
                    f"{run['load']:.2f}",
                ]
            )
            print(common.markdown_table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
        ratios.append(ratio(runs[1], runs[split]))
        walls = runs[1]["wall"] / runs[split]["wall"]
        print(f"repeat {repeat}: steady-state ratio {ratios[-1]:.2f}, wall ratio {walls:.2f}")
    data = f"{args.limit_train} images" if args.limit_train else "full training file"
    lines = [
        f"`python -m search.run --study fashion --workers W --pruner none --no-warm-start "
        f"--max-epochs {args.epochs} --patience {args.epochs} --no-retrain` for W = 1 and "
        f"{split}, a fresh SQLite study per run holding the same {args.networks} enqueued "
        f"networks (the warm start, then RandomSampler draws from the service's space, seed = "
        f"repeat - 1), {data}, {args.repeats} repeat(s), arms alternating order.",
        "",
        common.markdown_table(HEADERS, rows),
        "",
        f"- steady-state throughput of {split} one-thread workers over one {split}-thread "
        f"worker (summed training seconds of the same networks, the split's divided by "
        f"{split}), per repeat: " + ", ".join(f"{r:.2f}" for r in ratios),
        f"- mean: {statistics.fmean(ratios):.2f}x (above 1: the split trains faster)",
    ]
    common.report("bench_workers", "\n".join(lines), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
