"""How good a network the default command finds, chosen honestly, and how long it takes.

Runs `python -m search.run --study fashion` (or --study mnist) end to end, as a user does, on a
fresh SQLite study per run: search, retrain, ensemble and report. For each run it records,
from the study's database and report.json alone:
- the search's best validation accuracy;
- the configuration ranked first on validation (as the report ranks it), its retrained test
  accuracy as mean ± standard deviation over its seeds, and its validation accuracy;
- the ensemble's validation and test accuracy (members chosen on validation);
- wall time of the search and of the retrain stage (from the run's own log lines), epochs
  trained in the search, and epochs per second.

A full run is the default command (about 40 minutes on 2 cores) repeated --runs times with
seeds 0, 1, ...; --quick runs a 2,000-image slice for a few trials (under 2 minutes), which the
tests run. Every run appends one row; the summary is the mean over runs.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

from search.cli import positive_int

QUICK = {
    "runs": 1,
    "limit_train": 2000,
    "extra": "--n-trials 4 --max-epochs 2 --timeout 60 --retrain-top 2 --seeds 2",
}
FULL = {"runs": 3, "limit_train": None, "extra": ""}
HEADERS = (
    "run",
    "seed",
    "search best val",
    "chosen config",
    "chosen val (retrain)",
    "chosen test (mean ± sd)",
    "ensemble val",
    "ensemble test",
    "trials",
    "epochs",
    "epochs/s",
    "search s",
    "retrain s",
    "load (15 min, at end)",
)


def one_run(args, seed: int) -> dict:
    """One end-to-end `search.run` in a fresh folder; its figures from the database."""
    import optuna

    folder = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    url = f"sqlite:///{folder / 'studies.db'}"
    command = [sys.executable, "-m", "search.run", "--study", args.study, "--storage", url]
    command += ["--seed", str(seed), *args.extra.split()]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.limit_train:
        command += ["--limit-train", str(args.limit_train)]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=args.run_timeout
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench_quality: search.run exited {done.returncode}:\n{tail}")
    searched = re.search(r"^done in (\d+) s", done.stdout, re.M)
    search_seconds = float(searched.group(1)) if searched else float("nan")
    study = optuna.load_study(study_name=args.study, storage=url)
    epochs = sum(t.user_attrs.get("epochs_run", 0) for t in study.trials)
    report = json.loads((folder / "reports" / args.study / "report.json").read_text())
    chosen = report["retrained"][0]  # ranked on validation by the report itself
    ensemble = (report.get("ensembles") or [None])[-1]
    return {
        "seed": seed,
        "best_val": report["best_search_value"],
        "chosen": chosen["label"],
        "chosen_val": chosen["val_accuracy_mean"],
        "chosen_test": chosen["test_accuracy_mean"],
        "chosen_test_sd": chosen["test_accuracy_std"],
        "ensemble_val": None if ensemble is None else ensemble["val_accuracy"],
        "ensemble_test": None if ensemble is None else ensemble["test_accuracy"],
        "trials": len(study.trials),
        "epochs": epochs,
        "epochs_per_s": epochs / search_seconds if search_seconds else float("nan"),
        "search_s": search_seconds,
        "retrain_s": wall - search_seconds,
        "folder": str(folder),
        # A 2-core machine: anything else running inflates the wall times; this says how much.
        "load15": os.getloadavg()[2],
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def row(index: int, r: dict) -> list[str]:
    return [
        str(index),
        str(r["seed"]),
        _pct(r["best_val"]),
        r["chosen"],
        _pct(r["chosen_val"]),
        f"{r['chosen_test'] * 100:.2f} ± {r['chosen_test_sd'] * 100:.2f}%",
        _pct(r["ensemble_val"]),
        _pct(r["ensemble_test"]),
        str(r["trials"]),
        str(r["epochs"]),
        f"{r['epochs_per_s']:.2f}",
        f"{r['search_s']:.0f}",
        f"{r['retrain_s']:.0f}",
        f"{r['load15']:.2f}",
    ]


def summary(results: list[dict]) -> list[str]:
    def mean(key: str) -> float:
        values = [r[key] for r in results if r[key] is not None]
        return statistics.fmean(values) if values else float("nan")

    wall = [(r["search_s"] + r["retrain_s"]) / 60 for r in results]
    return [
        f"- chosen configuration's test accuracy, mean over {len(results)} runs: "
        f"{mean('chosen_test') * 100:.2f}% (each run: mean of its seeds)",
        f"- ensemble test accuracy, mean over runs: {mean('ensemble_test') * 100:.2f}%",
        f"- search best validation accuracy, mean: {mean('best_val') * 100:.2f}%",
        f"- wall time per run: {min(wall):.1f} to {max(wall):.1f} min "
        f"(search {mean('search_s'):.0f} s, retrain {mean('retrain_s'):.0f} s on average)",
        f"- epochs per second in the search, mean: {mean('epochs_per_s'):.2f}",
    ]


def main() -> None:
    made = common.parser(
        "bench_quality.py",
        __doc__.splitlines()[0],
        quick="one run on a 2,000-image slice, 4 trials of 2 epochs, 2 x 2 retrained",
    )
    common.add_data_flags(
        made, limit="all", quick=QUICK["limit_train"], absent="search.run's own lookup"
    )
    made.add_argument("--study", default="fashion", choices=("fashion", "mnist"))
    made.add_argument("--runs", type=positive_int, default=None, help="runs (default 3)")
    made.add_argument(
        "--first-seed", type=int, default=0, help="seed of the first run (runs count up from it)"
    )
    made.add_argument(
        "--extra", default=None, help="more search.run flags, quoted (default: none, the defaults)"
    )
    made.add_argument(
        "--run-timeout", type=float, default=3 * 3600, help="seconds one run may take at most"
    )
    args = made.parse_args()
    common.fill_defaults(args, QUICK, FULL)
    results = []
    seeds = range(args.first_seed, args.first_seed + args.runs)
    for index, seed in enumerate(seeds):
        print(f"run {index + 1}/{args.runs} (seed {seed}) ...", flush=True)
        results.append(one_run(args, seed=seed))
        print(common.text_table(HEADERS, [row(index + 1, results[-1])]), flush=True)
        # Kept for a look at the study and the report (a full run leaves 200-400 MB of models).
        print(f"run {index + 1} kept in {results[-1]['folder']} (delete it when done)", flush=True)
    body = [
        f"`python -m search.run --study {args.study}` end to end, fresh SQLite study per run, "
        f"{args.runs} runs (seeds {seeds.start}..{seeds.stop - 1}); flags: "
        f"`{args.extra or '(defaults)'}`"
        + (f", --limit-train {args.limit_train}" if args.limit_train else ", full training file")
        + ". Chosen = ranked first on validation by the report; test figures evaluated once.",
        "",
        common.markdown_table(HEADERS, [row(i + 1, r) for i, r in enumerate(results)]),
        "",
        *summary(results),
    ]
    common.report(f"bench_quality ({args.study})", "\n".join(body), args)


if __name__ == "__main__":
    main()
