"""Model quality per hour of compute: the service's default search against what users would pick
instead, on the same search space, the same data split and the same wall-clock budget.

Methods (each run is a fresh process, started and stopped by this script):

- `service`: `python -m search.run` with its defaults (multivariate TPE + Hyperband pruning);
- `tpe-nopruning`: the same command with `--pruner none`;
- `random-median`: the same command with `--sampler random --pruner median`;
- `kerastuner`: KerasTuner's Hyperband (`keras_tuner.Hyperband`, max_epochs and patience as the
  service's) over the same space, building the very same networks with `models.build_dense`.

A run's clock starts when its process is launched (imports and data loading count) and the
process is interrupted when the budget is spent; only trials finished by then count. A trial's
score is its best per-epoch validation accuracy on the service's fixed 10% split; best-so-far
steps at trial ends. Repeats are interleaved (repeat r runs every method once, in a rotated
order, all with seed r), so slow drifts of the machine hit every method alike.

Data: Fashion-MNIST from --data-dir / env SEARCH_DATA_DIR, else the service's own lookup.

    python benchmarks/bench_search.py --quick            # 4 methods x 60 s: about 4.5 minutes
    python benchmarks/bench_search.py                    # 4 methods x 3 repeats x 15 min: 3 hours
    python benchmarks/bench_search.py --budget 600 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import common

from search.cli import positive_int

METHODS = ("service", "tpe-nopruning", "random-median", "kerastuner")
SERVICE_FLAGS = {
    "service": [],
    "tpe-nopruning": ["--pruner", "none"],
    "random-median": ["--sampler", "random", "--pruner", "median"],
}
THRESHOLDS = (0.88, 0.89)
# 60 s: the service's first trial (the 2 x 1024 warm start) ends 16 to 22 s after launch on a
# quiet machine here, and after more than 30 s when the test suite's other worker shares the CPU.
QUICK = {"budget": 60.0, "repeats": 1, "limit_train": 2000, "max_epochs": 2}
FULL = {"budget": 900.0, "repeats": 3, "limit_train": None, "max_epochs": 20}
STOP_GRACE_SECONDS = 60  # after the interrupt, how long a run may take to exit before SIGKILL


@dataclass
class Run:
    """One method's run: (seconds since launch, score) of every trial finished in the budget."""

    method: str
    repeat: int
    budget: float
    finished: list[tuple[float, float]] = field(default_factory=list)
    pruned: int | None = None  # None: the method has no pruning (KerasTuner)
    epochs: int = 0
    note: str = ""

    def best(self, until: float | None = None) -> float | None:
        scores = [s for t, s in self.finished if until is None or t <= until]
        return max(scores, default=None)

    def time_to(self, threshold: float) -> float | None:
        best = -1.0
        for seconds, score in sorted(self.finished):
            best = max(best, score)
            if best >= threshold:
                return seconds
        return None

    def per_hour(self) -> float:
        return len(self.finished) / self.budget * 3600

    def curve(self) -> tuple[list[float], list[float]]:
        """Best-so-far as a step curve from 0 to the budget."""
        xs, ys, best = [], [], None
        for seconds, score in sorted(self.finished):
            if best is None or score > best:
                best = score
                xs.append(seconds)
                ys.append(best)
        if xs:
            xs.append(self.budget)
            ys.append(ys[-1])
        return xs, ys


# --- running one method ------------------------------------------------------------------------


def launch(command: list[str], log: Path, budget: float) -> tuple[float, dt.datetime, int]:
    """Run `command` for `budget` seconds, then interrupt it (Ctrl-C to its process group).

    Returns the launch time (time.time() and naive local datetime, as Optuna stores) and the
    exit status.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "w") as out:
        started, started_dt = time.time(), dt.datetime.now()
        process = subprocess.Popen(
            command,
            cwd=common.ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the interrupt reaches its workers too
        )
        try:
            process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return started, started_dt, process.returncode


def run_service(method: str, repeat: int, args: argparse.Namespace, workdir: Path) -> Run:
    """One `python -m search.run` run; its trials are read back from its SQLite study."""
    import optuna
    from optuna.trial import TrialState

    db = workdir / f"{method}-r{repeat}.db"
    command = common.search_run(
        f"sqlite:///{db}",
        *("--study-name", f"{method}-r{repeat}", "--seed", str(repeat)),
        *("--timeout", str(args.budget), "--n-trials", "1000000"),
        *("--max-epochs", str(args.max_epochs), *_data_flags(args), *SERVICE_FLAGS[method]),
    )
    log = workdir / f"{method}-r{repeat}.log"
    _, started, code = launch(command, log, args.budget)
    run = Run(method, repeat, args.budget, pruned=0)
    if not db.exists():
        raise RuntimeError(f"{method} run {repeat} made no study (exit {code}); log:\n{_tail(log)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=f"{method}-r{repeat}", storage=f"sqlite:///{db}")
    for trial in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        seconds = (trial.datetime_complete - started).total_seconds()
        if seconds > args.budget or not trial.intermediate_values:
            continue
        run.finished.append((seconds, max(trial.intermediate_values.values())))
        run.pruned += trial.state == TrialState.PRUNED
        run.epochs += len(trial.intermediate_values)
    return run


def run_kerastuner(repeat: int, args: argparse.Namespace, workdir: Path) -> Run:
    """One KerasTuner Hyperband run in a child process that logs every finished trial."""
    events = workdir / f"kerastuner-r{repeat}.jsonl"
    command = [sys.executable, str(Path(__file__).resolve()), "--kerastuner-child", str(events)]
    command += ["--seed", str(repeat), "--max-epochs", str(args.max_epochs), *_data_flags(args)]
    log = workdir / f"kerastuner-r{repeat}.log"
    started, _, code = launch(command, log, args.budget)
    run = Run("kerastuner", repeat, args.budget)
    if not events.exists():
        raise RuntimeError(f"KerasTuner run {repeat} logged nothing (exit {code}):\n{_tail(log)}")
    for line in events.read_text().splitlines():
        event = json.loads(line)
        seconds = event["time"] - started
        if seconds <= args.budget and event["score"] is not None:
            run.finished.append((seconds, event["score"]))
            run.epochs += event["epochs"]
    return run


def _data_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--data-dir", args.data_dir] if args.data_dir else []
    return flags + (["--limit-train", str(args.limit_train)] if args.limit_train else [])


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def kerastuner_child(args: argparse.Namespace) -> int:
    """The KerasTuner side (in its own process): Hyperband over the service's search space."""
    import keras
    import keras_tuner

    from models import build_dense
    from models.params import ModelParams
    from search.data import load_split
    from search.study.config import EVAL_BATCH
    from search.study.objective import MONITOR
    from search.study.studyfile import PRESETS

    preset = PRESETS["fashion"]
    space = preset.space
    data = load_split(
        "fashion",
        args.data_dir,
        val_fraction=preset.val_fraction,
        split_seed=preset.split_seed,
        limit_train=args.limit_train,
    )
    keras.utils.set_random_seed(args.seed)

    class DenseHyperModel(keras_tuner.HyperModel):
        """The service's space, same names and ranges (search/study/space.py), in KerasTuner
        terms."""

        def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
            n_layers = hp.Int("n_layers", *space.n_layers)
            units = [
                hp.Int(f"n_units_l{i}", *space.n_units, sampling="log") for i in range(n_layers)
            ]
            dropouts = [hp.Float(f"dropout_l{i}", *space.dropout) for i in range(n_layers)]
            params = ModelParams(
                units=tuple(units),
                dropouts=tuple(dropouts),
                activation=hp.Choice("activation", list(space.activations)),
                learning_rate=hp.Float("learning_rate", *space.learning_rate, sampling="log"),
                optimizer=hp.Choice("optimizer", list(space.optimizers)),
                batch_size=hp.Choice("batch_size", list(space.batch_sizes)),
            )
            return build_dense(params, data.input_shape)

        def fit(self, hp, model, *fit_args, **fit_kwargs):
            return model.fit(*fit_args, batch_size=hp.get("batch_size"), **fit_kwargs)

    epochs_seen = [0, 0]  # all epochs trained, and those already logged with a trial

    class CountEpochs(keras.callbacks.Callback):
        """KerasTuner deep-copies callbacks per trial; the count lives outside the copies."""

        def on_epoch_end(self, epoch, logs=None) -> None:
            epochs_seen[0] += 1

    class LoggingHyperband(keras_tuner.Hyperband):
        def on_trial_end(self, trial) -> None:
            super().on_trial_end(trial)
            done = self.oracle.get_trial(trial.trial_id)
            values = done.hyperparameters.values
            epochs = epochs_seen[0] - epochs_seen[1]
            epochs_seen[1] = epochs_seen[0]
            event = {
                "time": time.time(),
                "trial": trial.trial_id,
                "score": done.score,
                "epochs": epochs,
                "status": str(done.status),
                "tuner_epochs": values.get("tuner/epochs"),
                "initial_epoch": values.get("tuner/initial_epoch"),
            }
            with open(args.kerastuner_child, "a") as handle:
                handle.write(json.dumps(event) + "\n")

    tuner = LoggingHyperband(
        DenseHyperModel(),
        objective=keras_tuner.Objective(MONITOR, direction="max"),
        max_epochs=args.max_epochs,
        factor=3,
        hyperband_iterations=1000,  # never the limit: the budget is
        seed=args.seed,
        directory=str(Path(args.kerastuner_child).with_suffix("")),
        project_name="kerastuner",
        overwrite=True,
    )
    tuner.search(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        validation_batch_size=EVAL_BATCH,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=preset.patience),
            CountEpochs(),
        ],
        verbose=0,
    )
    return 0


# --- summary, checks and plot --------------------------------------------------------------------


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _median_time(runs: list[Run], threshold: float) -> float | None:
    """Median time to the threshold; a run that never reached it counts as 'after the budget'."""
    times = [run.time_to(threshold) for run in runs]
    reached = sorted(t for t in times if t is not None)
    if len(reached) * 2 <= len(times):  # the median run did not reach it
        return None
    ordered = sorted(t if t is not None else float("inf") for t in times)
    return statistics.median(ordered)


def summary_rows(runs: list[Run], methods: list[str]) -> list[list[str]]:
    rows = []
    for method in methods:
        mine = [r for r in runs if r.method == method]
        bests = [r.best() for r in mine if r.best() is not None]
        row = [method, str(len(mine)), _mean_std(bests)]
        for threshold in THRESHOLDS:
            reached = sum(r.time_to(threshold) is not None for r in mine)
            median = _median_time(mine, threshold)
            shown = f"{median:.0f}" if median is not None else "not reached"
            row.append(f"{shown} ({reached}/{len(mine)})")
        row.append(_mean_std([r.per_hour() for r in mine], 0))
        row.append(_mean_std([float(r.epochs) for r in mine], 0))
        pruned = [r.pruned / len(r.finished) for r in mine if r.pruned is not None and r.finished]
        row.append(f"{100 * statistics.mean(pruned):.0f}%" if pruned else "n/a")
        rows.append(row)
    return rows


def run_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in sorted(runs, key=lambda r: (r.method, r.repeat)):
        t88, t89 = (run.time_to(t) for t in THRESHOLDS)
        rows.append(
            [
                run.method,
                str(run.repeat),
                f"{run.best():.4f}" if run.best() is not None else "-",
                "-" if t88 is None else f"{t88:.0f}",
                "-" if t89 is None else f"{t89:.0f}",
                str(len(run.finished)),
                "n/a" if run.pruned is None else str(run.pruned),
                str(run.epochs),
            ]
        )
    return rows


def target_lines(runs: list[Run]) -> list[str]:
    """The issue's targets, checked on the medians/means of this run."""

    def of(method: str) -> list[Run]:
        return [r for r in runs if r.method == method]

    def mean_best(method: str) -> float | None:
        bests = [r.best() for r in of(method) if r.best() is not None]
        return statistics.mean(bests) if bests else None

    def mean_rate(method: str) -> float:
        return statistics.mean(r.per_hour() for r in of(method)) if of(method) else 0.0

    lines = []
    service, kt, nopr = mean_best("service"), mean_best("kerastuner"), mean_best("tpe-nopruning")
    if service is not None and kt is not None:
        verdict = "PASS" if service >= kt else "FAIL"
        lines.append(
            f"- best validation accuracy, service {service:.4f} vs KerasTuner Hyperband "
            f"{kt:.4f} (means): {verdict}"
        )
        budget = of("service")[0].budget
        mine, theirs = _median_time(of("service"), 0.89), _median_time(of("kerastuner"), 0.89)
        if mine is None:
            lines.append("- time to 89%: the service's median run did not reach 89%: FAIL")
        elif theirs is None:
            verdict = "PASS" if mine <= budget / 2 else "UNDECIDED"
            lines.append(
                f"- time to 89%: service {mine:.0f} s; KerasTuner's median run did not reach it "
                f"within {budget:.0f} s, so half its time is over {budget / 2:.0f} s: {verdict}"
            )
        else:
            verdict = "PASS" if mine <= theirs / 2 else "FAIL"
            lines.append(
                f"- time to 89%: service {mine:.0f} s vs KerasTuner {theirs:.0f} s (medians), "
                f"ratio {mine / theirs:.2f} (target <= 0.5): {verdict}"
            )
    if service is not None and nopr is not None and mean_rate("tpe-nopruning") > 0:
        ratio = mean_rate("service") / mean_rate("tpe-nopruning")
        verdict = "PASS" if ratio >= 5 and service >= nopr else "FAIL"
        lines.append(
            f"- trials per hour, service vs TPE without pruning: {ratio:.1f}x (target >= 5x) at "
            f"best accuracy {service:.4f} vs {nopr:.4f} (target equal or better): {verdict}"
        )
    return lines


def plot(runs: list[Run], methods: list[str], path: Path, title: str) -> None:
    colors = dict(zip(METHODS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    fig, ax = common.axes((8, 4.8))
    for method in methods:
        for i, run in enumerate(r for r in runs if r.method == method):
            xs, ys = run.curve()
            if xs:
                ax.step(
                    [x / 60 for x in xs],
                    ys,
                    where="post",
                    color=colors[method],
                    alpha=0.8,
                    linewidth=1.2,
                    label=method if i == 0 else None,
                )
    for threshold in THRESHOLDS:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=0.8)
    scores = [s for r in runs for _, s in r.finished]
    if scores:
        ax.set_ylim(max(min(scores), 0.80), max(max(scores), 0.9) + 0.003)
    common.save_plot(
        fig,
        ax,
        path,
        xlabel="wall time since launch (min)",
        ylabel="best validation accuracy so far",
        title=title,
        legend="lower right",
    )


# --- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = common.parser(
        "bench_search.py",
        "Same search space, same data split, same wall-clock budget: the service's default "
        "search (TPE + Hyperband) against TPE without pruning, random sampling with median "
        "pruning and KerasTuner's Hyperband. Prints best validation accuracy, time to 88% "
        "and 89%, trials per hour and share pruned, checks the targets, and draws "
        "best-so-far against wall time in one PNG.",
        quick=f"{QUICK['budget']:.0f} s per method, 1 repeat, {QUICK['limit_train']} images, "
        f"{QUICK['max_epochs']} epochs",
        png="search.png",
    )
    common.add_data_flags(
        parser,
        limit="all 60,000",
        quick=QUICK["limit_train"],
        absent="else the service's own lookup",
    )
    common.add_plot_flag(parser, "search.png", "best-so-far against wall time")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"wall-clock budget of each run (default {FULL['budget']:.0f}; with --quick "
        f"{QUICK['budget']:.0f})",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"runs per method, interleaved, repeat r with seed r (default {FULL['repeats']}; "
        f"with --quick {QUICK['repeats']})",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="which methods to run (default all four)",
    )
    parser.add_argument(
        "--max-epochs",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"epochs a trial may run at most, every method (default {FULL['max_epochs']}, the "
        f"service's; with --quick {QUICK['max_epochs']})",
    )
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--kerastuner-child", metavar="JSONL", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    common.fill_defaults(args, QUICK, FULL)
    if args.kerastuner_child:
        return kerastuner_child(args)
    if not args.budget > 0:
        print("--budget must be a positive number of seconds", file=sys.stderr)
        return 2
    if "kerastuner" in args.methods:
        try:
            import keras_tuner  # noqa: F401
        except ImportError:
            print(
                "keras-tuner is not installed: pip install -e '.[bench]' (or leave kerastuner "
                "out of --methods)",
                file=sys.stderr,
            )
            return 2
    plot_path = common.plot_path(args, "search.png")
    total = args.budget * args.repeats * len(args.methods)
    print(
        f"{len(args.methods)} methods x {args.repeats} repeats x {args.budget:.0f} s: about "
        f"{total / 60:.0f} min",
        flush=True,
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench_search_") as folder:
        workdir = Path(folder)
        for repeat in range(args.repeats):
            shift = repeat % len(args.methods)
            for method in args.methods[shift:] + args.methods[:shift]:
                print(f"repeat {repeat}: {method} ...", flush=True)
                if method == "kerastuner":
                    run = run_kerastuner(repeat, args, workdir)
                else:
                    run = run_service(method, repeat, args, workdir)
                best = run.best()
                print(
                    f"  {len(run.finished)} trials finished, best "
                    f"{'-' if best is None else f'{best:.4f}'}",
                    flush=True,
                )
                runs.append(run)
    data = f"{args.limit_train} training-file images" if args.limit_train else "all 60,000"
    conditions = (
        f"Fashion-MNIST, {data} (the service's seeded 10% validation split), at most "
        f"{args.max_epochs} epochs a trial, {args.budget:.0f} s of wall time per run from process "
        f"launch, {args.repeats} interleaved repeats (seed = repeat). Score: a trial's best "
        "per-epoch validation accuracy, counted when the trial ends; time to 88%/89%: median over "
        "repeats, (k/n) runs reached it; KerasTuner counts each Hyperband round as a trial."
    )
    headers = (
        "method",
        "runs",
        "best val acc (mean ± sd)",
        "s to 88%",
        "s to 89%",
        "trials/hour",
        "epochs trained",
        "pruned",
    )
    body = [
        conditions,
        "",
        common.markdown_table(headers, summary_rows(runs, args.methods)),
        "",
        "Per run:",
        "",
        common.markdown_table(
            ("method", "repeat", "best", "s to 88%", "s to 89%", "trials", "pruned", "epochs"),
            run_rows(runs),
        ),
        "",
        *target_lines(runs),
    ]
    if plot_path is not None:
        title = f"best-so-far, {args.budget:.0f} s budget, {args.repeats} repeats ({data})"
        plot(runs, args.methods, plot_path, title)
        body.append(f"\nplot: {plot_path.name}")
    common.report("bench_search", "\n".join(body), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
