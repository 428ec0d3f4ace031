"""Model quality per hour of compute: the service's default search against what users would pick
instead, judged on retrained test accuracy, with the same search space, data split, callbacks,
TensorFlow thread settings and wall-clock budget for every arm.

Arms (each run is a fresh process, started and interrupted by this script):

- `service`: `python -m search.run` as it ships (multivariate TPE, Hyperband pruning, the warm
  start as its first trial);
- `tpe-nopruning`: the same command with `--pruner none`;
- `random-hyperband`: the same command with `--sampler random --pruner hyperband`: the sampler
  changed, the schedule kept, so sampler and schedule are measured apart;
- `kerastuner-hyperband`: KerasTuner's Hyperband (max_epochs as the service's, factor 3);
- `kerastuner-bayes`: KerasTuner's BayesianOptimization with its defaults (it samples
  3 x 16 = 48 random trials before its Gaussian process takes over).

The KerasTuner arms sample the service's space (search/study/space.py: same names, ranges and
log scales; every layer's settings declared on every build under a conditional scope, so a
deeper network samples its new layers over the full range), build the networks with the
service's builder (search.study.objective.build_model: cosine schedule over the epochs allowed),
train them with the service's callbacks (TerminateOnNaN; EarlyStopping on val_accuracy with the
preset's patience) and train as many networks at a time with the same threads: the service's
three arms run as it ships, two one-thread worker processes (`--workers 2`, the default), and
the KerasTuner arms run KerasTuner's distributed mode with as many one-thread tuner processes
and a chief process serving the oracle (its guide's set-up, on one machine). While Hyperband's
chief has no trial for a tuner process (the other one is ending a round), the waiting process
asks again every 0.1 s instead of at once (KerasTuner's loop), which spares the training one's
CPU: a help to KerasTuner.

Clock: a run's budget starts when its process is launched (imports and data loading count); its
process group gets SIGTERM (taken as Ctrl-C) when the budget is spent, and only networks whose
training ended by then count. Start-up (launch to the first trial's start) is reported in its own
column.

Choice and retrain: each run's configuration is chosen on validation as the service chooses (the
complete trial with the best validation accuracy, ties to the earlier one; every KerasTuner
trial that finished is complete in KerasTuner's terms). After the budget, outside it, the choice
is retrained by the service's retrain harness with 3 seeds (the training split, early stopping
on the validation split with the preset's patience, best epoch restored), and each model is
evaluated once on the test set. The test set chooses nothing; the retrain's seconds are
reported apart. The retrains of a repeat run once all its arms have searched (nothing runs
beside a search), in two one-thread processes side by side, as the service's retrain stage
runs by default.

Rotation and statistics: repeat r runs the arms in their order rotated by r (a cyclic Latin
square: with 5 repeats of 5 arms every arm runs once in every position), every arm of repeat r
seeded (r + 1) x 1,000,003 (KerasTuner takes seed 0 for "no seed"; far-apart seeds because
KerasTuner's oracle, the networks of its arms and the retrains count up from their seed, and
with seeds r + 1 the repeats of 2026-12-04 shared those streams shifted by one; the service's
own trials hash theirs, `search.study.seeds`). Differences are paired by repeat (service
minus each arm) with a 95% Student-t interval. Throughput is counted in distinct networks (a
KerasTuner Hyperband round continues its network) and epochs per hour of budget, and in CPU
seconds from the operating system's counters of the waited-for process tree; the 1-minute load
average at each budget's end shows what else the machine was doing.

Data: Fashion-MNIST from --data-dir / env SEARCH_DATA_DIR, else the service's own lookup.

    python benchmarks/bench_search.py --quick      # 5 arms x 60 s, 2,000 images: about 6 min
    python benchmarks/bench_search.py              # 5 arms x 5 repeats x 15 min: 6.3 hours of
                                                   # search, and 25 retrains of 3 seeds (the
                                                   # warm start's took 18 min when they ran one
                                                   # at a time; now two): about 8.3 hours
                                                   # (5 x the one repeat measured, 99 min)
    python benchmarks/bench_search.py --budget 600 --repeats 2 --methods service kerastuner-bayes

A full run is longer than many machines stay up. With `--repeats-file FILE` every finished repeat
(all its arms, retrained) is appended to FILE as one JSON line with the machine and revision it
ran on; the same command run again skips the recorded repeats, and `--new-repeats K` runs at most
K more per invocation. A repeat's arms always run side by side in one invocation (the paired
differences compare runs of one machine and one revision); one cut short is run again whole. The
table is appended to RESULTS.md only once every repeat is recorded; until then it is printed,
marked partial.

    python benchmarks/bench_search.py --repeats-file benchmarks/search_repeats.jsonl --new-repeats 1
                                   # one repeat: 75 min of search, 5 retrains: 99 min in all
                                   # (measured on a 2-core machine, 2026-12-04)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import common

from search.cli import positive_int

SERVICE = "service"
SERVICE_FLAGS = {
    SERVICE: [],
    "tpe-nopruning": ["--pruner", "none"],
    "random-hyperband": ["--sampler", "random", "--pruner", "hyperband"],
}
KERASTUNER = {"kerastuner-hyperband": "hyperband", "kerastuner-bayes": "bayes"}
ARMS = (*SERVICE_FLAGS, *KERASTUNER)
THRESHOLDS = (0.88, 0.89)
TARGET_POINTS = 1.0  # the service's retrained test accuracy above every other arm's, in points
TARGET_TIME_RATIO = 0.5  # the service's time to 89% against the best other arm's
# 60 s: the service's first trial (the 2 x 1024 warm start) ends 16 to 22 s after launch on a
# quiet machine here, and after more than 30 s when the test suite's other worker shares the CPU.
QUICK = {"budget": 60.0, "repeats": 1, "limit_train": 2000, "max_epochs": 2, "seeds": 1}
FULL = {"budget": 900.0, "repeats": 5, "limit_train": None, "max_epochs": 20, "seeds": 3}
STOP_GRACE_SECONDS = 60  # after the interrupt, how long a run may take to exit before SIGKILL
# A KerasTuner process's name in its trials' log: "chief" serves, "tuner0", ... train; "alone"
# trains in a run of one process.
TUNER = os.environ.get("KERASTUNER_TUNER_ID", "alone")
IDLE_PAUSE = 0.1  # seconds a KerasTuner process waits when its chief has no trial for it yet


@dataclass(frozen=True)
class Network:
    """One network's training that ended within the budget: an Optuna trial, or a KerasTuner
    trial (for Hyperband one round; a later round continues the same network)."""

    seconds: float  # since launch, when it ended
    params: dict[str, Any]  # search-space parameters only (KerasTuner's tuner/* keys left out)
    epochs: int  # epochs trained in it
    value: float | None  # its best per-epoch validation accuracy if the service's rule may
    # choose it (a complete trial), else None (pruned, failed, diverged)


@dataclass
class Run:
    """One arm's run in one repeat: what it trained in the budget and how its choice retrained."""

    arm: str
    repeat: int
    position: int  # its place in the repeat's rotated order, 0-based
    budget: float
    startup: float | None  # seconds from launch to the first trial's start; None: no trial
    cpu_seconds: float
    load: float | None  # 1-minute load average when the budget ended
    stopped: str  # "interrupted" at the budget, or how the process ended before it
    networks: list[Network] = field(default_factory=list)
    test_accuracies: list[float] = field(default_factory=list)  # one per retrain seed
    retrain_seconds: float | None = None

    def chosen(self) -> Network | None:
        """What the service's rule (search.study.values.by_figure) picks: the complete trial
        with the best validation accuracy, ties to the earlier one."""
        chosen = None
        for network in self.networks:  # in order of ending: one process trains one at a time
            if network.value is not None and (chosen is None or network.value > chosen.value):
                chosen = network
        return chosen

    def best(self) -> float | None:
        chosen = self.chosen()
        return None if chosen is None else chosen.value

    def test(self) -> float | None:
        """The retrained choice's test accuracy, mean over seeds."""
        return statistics.fmean(self.test_accuracies) if self.test_accuracies else None

    def curve(self) -> tuple[list[float], list[float]]:
        """Best-so-far validation accuracy (of what the rule would choose) as a step curve up
        to the budget."""
        xs, ys, best = [], [], None
        for network in self.networks:
            if network.value is not None and (best is None or network.value > best):
                best = network.value
                xs.append(network.seconds)
                ys.append(best)
        if xs:
            xs.append(self.budget)
            ys.append(ys[-1])
        return xs, ys

    def time_to(self, threshold: float) -> float | None:
        xs, ys = self.curve()
        return next((x for x, y in zip(xs, ys, strict=True) if y >= threshold), None)

    def distinct_networks(self) -> int:
        from search.evaluation.selection import config_key

        return len({config_key(network.params) for network in self.networks})

    def epochs(self) -> int:
        return sum(network.epochs for network in self.networks)

    def per_hour(self, count: float) -> float:
        return count / self.budget * 3600


# --- launching one run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Launched:
    """What the launch of one run's process measured."""

    started: float  # time.time() at launch
    clock: dt.datetime  # the same moment as naive local time, as Optuna stores trial times
    cpu_seconds: float  # user + system time of the process and every process it waited for
    load: float | None  # 1-minute load average when the budget ended (or the process did)
    stopped: str


def launch(command: list[str], log: Path, budget: float) -> Launched:
    """Run `command` for `budget` seconds, then interrupt it (SIGTERM to its process group).

    CPU time is the difference of this process's RUSAGE_CHILDREN counters around the run: they
    grow when a child is waited for, by its time and that of every process it waited for
    itself (search.run waits for its workers)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    before = _children_cpu()
    with open(log, "w") as out:
        started, clock = time.time(), dt.datetime.now()
        process = subprocess.Popen(
            command,
            cwd=common.ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the interrupt reaches its workers too
        )
        try:
            code = process.wait(timeout=budget)
            stopped = f"exit {code} after {time.time() - started:.0f} s"
            load = _load()
        except subprocess.TimeoutExpired:
            load = _load()
            _interrupt(process)
            stopped = "interrupted"
    return Launched(started, clock, _children_cpu() - before, load, stopped)


def _interrupt(process: subprocess.Popen) -> None:
    # SIGTERM, which both kinds of run take as Ctrl-C: a benchmark started under nohup or as a
    # shell script's background job has SIGINT ignored, and so would its runs (each then waited
    # for STOP_GRACE_SECONDS and was killed).
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run_arm(arm: str, repeat: int, position: int, args: argparse.Namespace, workdir: Path) -> Run:
    """One run of `arm` in its own process, read back into a Run."""
    name = f"{arm}-r{repeat}"
    log = workdir / f"{name}.log"
    if arm in KERASTUNER:
        events = workdir / f"{name}.jsonl"
        command = [sys.executable, str(Path(__file__).resolve()), "--kerastuner-child", str(events)]
        command += ["--tuner", KERASTUNER[arm], "--seed", str(seed_of(repeat))]
        command += ["--max-epochs", str(args.max_epochs), *_data_flags(args)]
        launched = launch(command, log, args.budget)
        if not events.exists():
            raise RuntimeError(f"{name} logged nothing ({launched.stopped}):\n{_tail(log)}")
        networks, startup = kerastuner_networks(events, launched.started, args.budget)
        tuners = {json.loads(line)["tuner"] for line in events.read_text().splitlines()}
        print(f"  KerasTuner processes that trained: {', '.join(sorted(tuners))}", flush=True)
    else:
        db = workdir / f"{name}.db"
        command = common.search_run(
            f"sqlite:///{db}",
            *("--study-name", name, "--seed", str(seed_of(repeat))),
            *("--timeout", str(args.budget), "--n-trials", "1000000"),
            *("--max-epochs", str(args.max_epochs), *_data_flags(args), *SERVICE_FLAGS[arm]),
        )
        launched = launch(command, log, args.budget)
        if not db.exists():
            raise RuntimeError(f"{name} made no study ({launched.stopped}):\n{_tail(log)}")
        networks, startup = service_networks(f"sqlite:///{db}", name, launched.clock, args.budget)
    return Run(
        arm=arm,
        repeat=repeat,
        position=position,
        budget=args.budget,
        startup=startup,
        cpu_seconds=launched.cpu_seconds,
        load=launched.load,
        stopped=launched.stopped,
        networks=networks,
    )


# Repeats' seeds this far apart: KerasTuner's oracle draws trial k from seed + k, its networks
# and the retrains also count up from the seed, and none of them reaches the next repeat's.
SEED_STRIDE = 1_000_003


def seed_of(repeat: int) -> int:
    """Every arm's seed in repeat r: (r + 1) x SEED_STRIDE, never 0, which KerasTuner's
    oracles take for "no seed"."""
    return (repeat + 1) * SEED_STRIDE


def service_networks(
    storage: str, name: str, clock: dt.datetime, budget: float
) -> tuple[list[Network], float | None]:
    """The trials of a search.run study that ended in the budget, and its start-up seconds."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    startup = (min(starts) - clock).total_seconds() if starts else None
    networks = []
    for trial in trials:
        if trial.datetime_complete is None or not trial.params:  # running, or nothing sampled
            continue
        seconds = (trial.datetime_complete - clock).total_seconds()
        if seconds > budget:  # the trial the interrupt stopped
            continue
        epochs = int(trial.user_attrs.get("epochs_run", len(trial.intermediate_values)))
        value = trial.value if trial.state == TrialState.COMPLETE else None
        networks.append(Network(seconds, dict(trial.params), epochs, value))
    return sorted(networks, key=lambda n: n.seconds), startup


def kerastuner_networks(
    events: Path, started: float, budget: float
) -> tuple[list[Network], float | None]:
    """The KerasTuner trials logged as ended in the budget, and the start-up seconds."""
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    begins = [event["time"] for event in logged if event["event"] == "begin"]
    startup = min(begins) - started if begins else None
    networks = []
    for event in logged:
        seconds = event["time"] - started
        if event["event"] != "end" or seconds > budget:
            continue
        score = event["score"]
        complete = event["status"] == "COMPLETED" and score is not None and math.isfinite(score)
        networks.append(
            Network(seconds, event["params"], event["epochs"], score if complete else None)
        )
    return networks, startup


def _data_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--data-dir", args.data_dir] if args.data_dir else []
    return flags + (["--limit-train", str(args.limit_train)] if args.limit_train else [])


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def service_split(args: argparse.Namespace):
    """The service's split of Fashion-MNIST: the preset's validation share and split seed."""
    from search.data import load_split
    from search.study.studyfile import PRESETS

    preset = PRESETS["fashion"]
    return load_split(
        "fashion",
        args.data_dir,
        val_fraction=preset.val_fraction,
        split_seed=preset.split_seed,
        limit_train=args.limit_train,
    )


# --- retraining a run's choice -------------------------------------------------------------------


RETRAIN_PROCESSES = 2  # the retrains run as the service's retrain stage does by default: two
# one-thread processes side by side (search/evaluation/parallel.py; --workers 2, the default)
_RETRAIN: dict[str, Any] = {}  # in a retrain process: its data, test set and settings


def _retrain_process_start(settings: dict[str, Any]) -> None:
    """A retrain process's start: TensorFlow's threads as the service's retrain processes set
    them, then the service's split and test set, loaded once per process."""
    from search.data import load_test
    from search.study.supervisor import limit_threads

    limit_threads(RETRAIN_PROCESSES)
    args = argparse.Namespace(**settings)
    _RETRAIN.update(args=args, data=service_split(args), test=load_test("fashion", args.data_dir))


def _retrain_seed(params: dict[str, Any], seed: int) -> tuple[float, float]:
    """One seed of a choice, trained and evaluated once on the test set, in a retrain process:
    (test accuracy, training seconds)."""
    import tensorflow as tf

    from search.evaluation.harness import train_and_evaluate
    from search.study.studyfile import PRESETS

    tf.get_logger().setLevel("ERROR")  # a new model per retrain: tf.function retraces by design
    args, data = _RETRAIN["args"], _RETRAIN["data"]
    candidate = common.candidate(params, data, args.max_epochs, PRESETS["fashion"].patience)
    start = time.perf_counter()
    _, figures = train_and_evaluate(candidate, seed, data, _RETRAIN["test"])
    return figures["test_accuracy"], time.perf_counter() - start


def retrain_jobs(runs: list[Run], seeds: int) -> dict[tuple[str, int], list[Run]]:
    """The retrains `runs` need: (chosen configuration as JSON, seed) -> the runs it serves,
    each run's seeds in order; runs that chose the same configuration in a repeat share them."""
    jobs: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        chosen = run.chosen()
        if chosen is None:
            continue
        configuration = json.dumps(chosen.params, sort_keys=True)
        for i in range(seeds):
            jobs.setdefault((configuration, seed_of(run.repeat) + i), []).append(run)
    return jobs


def retrain(runs: list[Run], args: argparse.Namespace) -> float:
    """Retrain each run's choice with args.seeds seeds through the service's retrain harness, as
    the service's retrain stage does (its training split, early stopping on its validation
    split with the preset's patience, best epoch restored; RETRAIN_PROCESSES one-thread
    processes), and evaluate each model once on the test set. Every arm's choice goes through
    this same code, after every arm of the repeat has searched (nothing else runs beside a
    search). A run's `retrain_seconds` is the sum of its seeds' training seconds; returns the
    wall seconds of the whole retrain.

    Runs that chose the same configuration (the Optuna arms all start from the warm start)
    share its retrains: a seeded one-thread retrain is deterministic (repeats 0-4 retrained
    it once per arm and tied exactly), so each (configuration, seed) trains once."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = retrain_jobs(runs, args.seeds)
    if not jobs:
        return 0.0
    start = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=min(RETRAIN_PROCESSES, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_retrain_process_start,
        initargs=(vars(args),),
    ) as pool:
        futures = {
            key: pool.submit(_retrain_seed, sharing[0].chosen().params, key[1])
            for key, sharing in jobs.items()
        }
        for key, future in futures.items():
            accuracy, seconds = future.result()
            for run in jobs[key]:
                run.test_accuracies.append(accuracy)
                run.retrain_seconds = (run.retrain_seconds or 0.0) + seconds
    return time.perf_counter() - start


# --- the KerasTuner arms (in their own process) --------------------------------------------------


def declare_space(hp, space) -> dict[str, Any]:
    """The service's space (search/study/space.py, `sample_params`: same names, ranges and log
    scales) through KerasTuner's `hp`; returns the trial's parameters as the service names them.

    Every layer's settings are declared on every build, layer i's under a conditional scope
    that is active when n_layers > i: KerasTuner then knows the whole space from its first
    build, and a deeper network samples its extra layers over the full range instead of
    getting KerasTuner's defaults for them."""
    low, high = space.n_layers
    n_layers = hp.Int("n_layers", low, high)
    params: dict[str, Any] = {"n_layers": n_layers}
    for i in range(high):
        with hp.conditional_scope("n_layers", list(range(max(i + 1, low), high + 1))):
            units = hp.Int(f"n_units_l{i}", *space.n_units, sampling="log")
            dropout = hp.Float(f"dropout_l{i}", *space.dropout)
        if i < n_layers:
            params[f"n_units_l{i}"], params[f"dropout_l{i}"] = units, dropout
    params.update(
        activation=hp.Choice("activation", list(space.activations)),
        learning_rate=hp.Float("learning_rate", *space.learning_rate, sampling="log"),
        optimizer=hp.Choice("optimizer", list(space.optimizers)),
        batch_size=hp.Choice("batch_size", list(space.batch_sizes)),
        batch_norm=_boolean(hp, "batch_norm", space.batch_norm),
        weight_decay=hp.Float("weight_decay", *space.weight_decay, sampling="log"),
        standardize=_boolean(hp, "standardize", space.standardize),
        lr_schedule=hp.Choice("lr_schedule", list(space.lr_schedules)),
        label_smoothing=hp.Float("label_smoothing", *space.label_smoothing),
    )
    return params


def _boolean(hp, name: str, values: tuple[bool, ...]) -> bool:
    """hp.Boolean: KerasTuner's Choice would store True/False as the integers 1/0."""
    if set(values) != {False, True}:
        raise ValueError(f"the KerasTuner arms expect {name} to offer both False and True")
    return hp.Boolean(name)


def service_hypermodel(space, data, max_epochs: int, seed: int):
    """A KerasTuner HyperModel that builds and fits networks as the service's objective does:
    its builder (search.study.objective.build_model), a fresh seed per network, the network's
    sampled batch size; it counts the epochs of its last fit."""
    import keras
    import keras_tuner

    from search.study.objective import build_model
    from search.study.space import params_from_stored

    class ServiceSpace(keras_tuner.HyperModel):
        built = 0
        last_epochs = 0

        def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
            network = params_from_stored(declare_space(hp, space), space)
            keras.utils.set_random_seed(seed + self.built)
            self.built += 1
            return build_model(network, data, max_epochs)

        def fit(self, hp, model, *args, **kwargs):
            history = model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)
            self.last_epochs = len(history.epoch)
            return history

    return ServiceSpace()


def logging_tuner(kind: str, log: Callable[[dict], None]):
    """KerasTuner's Hyperband or BayesianOptimization, logging each trial's start and end."""
    import keras_tuner

    base = {"hyperband": keras_tuner.Hyperband, "bayes": keras_tuner.BayesianOptimization}[kind]

    class Logging(base):
        def on_trial_begin(self, trial) -> None:
            super().on_trial_begin(trial)
            self.hypermodel.last_epochs = 0
            log({"event": "begin", "time": time.time(), "trial": trial.trial_id, "tuner": TUNER})

        def on_trial_end(self, trial) -> None:
            super().on_trial_end(trial)
            done = self.oracle.get_trial(trial.trial_id)
            values = done.hyperparameters.values
            log(
                {
                    "event": "end",
                    "time": time.time(),
                    "trial": trial.trial_id,
                    "tuner": TUNER,
                    "status": str(done.status),
                    "score": done.score,
                    "epochs": self.hypermodel.last_epochs,
                    "params": {k: v for k, v in values.items() if not k.startswith("tuner/")},
                }
            )

    return Logging


def kerastuner_child(args: argparse.Namespace) -> int:
    """One KerasTuner run (its own process group): args.tuner over the service's space, its
    trials' starts and ends logged to the JSONL file args.kerastuner_child.

    With the service's default of several workers, the run uses KerasTuner's distributed mode
    as its guide describes it (a chief process serving the oracle over gRPC, and as many tuner
    processes as the service has workers, each with its share of the cores), so both sides
    train as many networks at a time with the same threads. This process starts them and waits
    for them (their CPU time then counts in its parent's counters); the budget's SIGTERM
    reaches the whole group."""
    if args.kerastuner_role is not None or service_workers() == 1:
        return kerastuner_process(args, service_workers())
    from search.errors import stop_on_sigterm

    stop_on_sigterm()
    command = [sys.executable, str(Path(__file__).resolve()), "--kerastuner-child"]
    command += [args.kerastuner_child, "--tuner", args.tuner, "--seed", str(args.seed)]
    command += ["--max-epochs", str(args.max_epochs), *_data_flags(args)]
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1"}
    env["KERASTUNER_ORACLE_PORT"] = str(_free_port())
    roles = ["chief", *(f"tuner{i}" for i in range(service_workers()))]
    processes = [
        subprocess.Popen(
            [*command, "--kerastuner-role", role], env={**env, "KERASTUNER_TUNER_ID": role}
        )
        for role in roles
    ]
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:  # the budget is spent: the group's SIGTERM reached them too
        for process in processes:
            process.wait()
        return 130
    return max(codes)


def service_workers() -> int:
    """The service's default number of local worker processes (StudyConfig.workers)."""
    import dataclasses

    from search.study.config import StudyConfig

    return next(f.default for f in dataclasses.fields(StudyConfig) if f.name == "workers")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _PatientOracle:
    """A tuner process's oracle client that waits IDLE_PAUSE seconds when the chief answers
    IDLE (Hyperband waiting for the other process to end a round's trial): KerasTuner's loop
    asks again at once, and two busy processes would take CPU from the one that trains. This
    helps KerasTuner; nothing else differs from its client."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def create_trial(self, tuner_id):
        trial = self._client.create_trial(tuner_id)
        if trial.status == "IDLE":
            time.sleep(IDLE_PAUSE)
        return trial


def kerastuner_process(args: argparse.Namespace, workers: int) -> int:
    """One KerasTuner process: alone (one worker), or the chief or a tuner of a distributed run
    (args.kerastuner_role, with KerasTuner's environment variables set)."""
    import keras
    import keras_tuner

    from search.errors import stop_on_sigterm
    from search.study.config import EVAL_BATCH
    from search.study.objective import MONITOR
    from search.study.studyfile import PRESETS

    # The service's workers set TensorFlow's threads with this function before any op runs;
    # calling the same one (with as many processes) keeps them from drifting apart.
    from search.study.supervisor import limit_threads

    limit_threads(workers)
    stop_on_sigterm()  # the budget's end, as search.run takes it
    events = Path(args.kerastuner_child)

    def log(event: dict) -> None:
        with open(events, "a") as handle:
            handle.write(json.dumps(event) + "\n")

    preset = PRESETS["fashion"]
    data = service_split(args)
    # Each tuner process seeds its networks from its own range (tuner0 from the run's seed).
    index = int(TUNER.removeprefix("tuner")) if TUNER.startswith("tuner") else 0
    hypermodel = service_hypermodel(preset.space, data, args.max_epochs, args.seed + 10_000 * index)
    # Iterations and trials without a useful limit: the budget is the limit.
    limits = (
        {"max_epochs": args.max_epochs, "factor": 3, "hyperband_iterations": 1000}
        if args.tuner == "hyperband"
        else {"max_trials": 1_000_000}
    )
    tuner = logging_tuner(args.tuner, log)(
        hypermodel,
        objective=keras_tuner.Objective(MONITOR, direction="max"),
        seed=args.seed,
        directory=str(events.with_suffix("") / (args.kerastuner_role or "alone")),
        project_name=args.tuner,
        overwrite=True,
        **limits,
    )
    if args.kerastuner_role not in (None, "chief"):
        tuner.oracle = _PatientOracle(tuner.oracle)
    try:
        tuner.search(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            validation_batch_size=EVAL_BATCH,
            epochs=args.max_epochs,  # Hyperband sets each round's own
            callbacks=[
                keras.callbacks.TerminateOnNaN(),
                keras.callbacks.EarlyStopping(
                    monitor=MONITOR, mode="max", patience=preset.patience
                ),
            ],
            verbose=0,
        )
    except KeyboardInterrupt:  # the budget is spent
        return 130
    return 0


# --- summary, statistics, targets and plot -------------------------------------------------------


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _median_time(runs: list[Run], threshold: float) -> float | None:
    """Median time to the threshold; a run that never reached it counts as 'after the budget'."""
    times = [run.time_to(threshold) for run in runs]
    if sum(t is not None for t in times) * 2 <= len(times):  # the median run did not reach it
        return None
    return statistics.median(t if t is not None else math.inf for t in times)


SUMMARY_HEADERS = (
    "arm",
    "runs",
    "best val acc",
    "test acc (retrained)",
    "s to 88%",
    "s to 89%",
    "networks/hour",
    "epochs/hour",
    "CPU s",
    "start-up s",
    "retrain s",
)


def summary_rows(runs: list[Run], arms: list[str]) -> list[list[str]]:
    """One row per arm: mean ± sd over its runs."""
    rows = []
    for arm in arms:
        mine = [r for r in runs if r.arm == arm]
        row = [arm, str(len(mine))]
        row.append(_mean_std(_present([r.best() for r in mine])))
        row.append(_mean_std(_present([r.test() for r in mine])))
        for threshold in THRESHOLDS:
            reached = sum(r.time_to(threshold) is not None for r in mine)
            median = _median_time(mine, threshold)
            shown = f"{median:.0f}" if median is not None else "not reached"
            row.append(f"{shown} ({reached}/{len(mine)})")
        row.append(_mean_std([r.per_hour(r.distinct_networks()) for r in mine], 0))
        row.append(_mean_std([r.per_hour(r.epochs()) for r in mine], 0))
        row.append(_mean_std([r.cpu_seconds for r in mine], 0))
        row.append(_mean_std(_present([r.startup for r in mine]), 1))
        row.append(_mean_std(_present([r.retrain_seconds for r in mine]), 0))
        rows.append(row)
    return rows


RUN_HEADERS = (
    "arm",
    "repeat",
    "position",
    "best val",
    "test acc (seeds)",
    "s to 89%",
    "networks",
    "epochs",
    "CPU s",
    "start-up s",
    "load",
    "retrain s",
    "process",
)


def run_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in sorted(runs, key=lambda r: (ARMS.index(r.arm), r.repeat)):
        best, t89 = run.best(), run.time_to(0.89)
        rows.append(
            [
                run.arm,
                str(run.repeat),
                str(run.position),
                "-" if best is None else f"{best:.4f}",
                _mean_std(run.test_accuracies),
                "-" if t89 is None else f"{t89:.0f}",
                str(run.distinct_networks()),
                str(run.epochs()),
                f"{run.cpu_seconds:.0f}",
                "-" if run.startup is None else f"{run.startup:.1f}",
                "-" if run.load is None else f"{run.load:.2f}",
                "-" if run.retrain_seconds is None else f"{run.retrain_seconds:.0f}",
                run.stopped,
            ]
        )
    return rows


def chosen_lines(runs: list[Run]) -> list[str]:
    """Each run's chosen network, as the service describes one."""
    from search.study.config import SearchSpace
    from search.study.space import params_from_stored

    lines = []
    for run in sorted(runs, key=lambda r: (ARMS.index(r.arm), r.repeat)):
        chosen = run.chosen()
        if chosen is None:
            shown = "none (no trial completed in the budget)"
        else:
            shown = params_from_stored(chosen.params, SearchSpace()).describe()
        lines.append(f"- {run.arm} r{run.repeat}: {shown}")
    return lines


def paired(runs: list[Run], arm: str, figure: Callable[[Run], float | None]) -> list[float]:
    """Service minus `arm`, in points, for every repeat where both runs have the figure."""
    mine = {r.repeat: figure(r) for r in runs if r.arm == SERVICE}
    theirs = {r.repeat: figure(r) for r in runs if r.arm == arm}
    return [
        100 * (mine[repeat] - theirs[repeat])
        for repeat in sorted(mine.keys() & theirs.keys())
        if mine[repeat] is not None and theirs[repeat] is not None
    ]


def interval_text(differences: list[float]) -> str:
    """'+0.52 points, 95% CI [-0.10, +1.14] (5 repeats, Student t)', or why there is none."""
    if not differences:
        return "no pair (a run without the figure)"
    mean, half = common.mean_interval(differences)
    if half is None:
        return f"{mean:+.2f} points (1 repeat: no interval)"
    return (
        f"{mean:+.2f} points, 95% CI [{mean - half:+.2f}, {mean + half:+.2f}] "
        f"({len(differences)} repeats, Student t)"
    )


def paired_lines(runs: list[Run], arms: list[str]) -> list[str]:
    if SERVICE not in arms:
        return ["- paired differences: none (the service was not run)"]
    lines = []
    for arm in (a for a in arms if a != SERVICE):
        for label, figure in (
            ("retrained test accuracy", Run.test),
            ("best validation accuracy", Run.best),
        ):
            text = interval_text(paired(runs, arm, figure))
            lines.append(f"- paired difference, service minus {arm}, {label}: {text}")
    return lines


def target_lines(runs: list[Run], arms: list[str]) -> list[str]:
    """The issue's targets, each PASS or MISSED with its figures."""
    others = [a for a in arms if a != SERVICE]
    if SERVICE not in arms or not others:
        return ["- targets: not judged (they compare the service with the other arms)"]
    lines = []
    for arm in others:
        differences = paired(runs, arm, Run.test)
        met = False
        if differences:
            mean, half = common.mean_interval(differences)
            met = mean >= TARGET_POINTS and half is not None and mean - half > 0
        lines.append(
            f"- target: service's retrained test accuracy at least {TARGET_POINTS:.1f} point "
            f"above {arm}'s, the 95% interval of the paired difference above zero: "
            f"{interval_text(differences)}: {'PASS' if met else 'MISSED'}"
        )
    lines.append(time_target_line(runs, others))
    return lines


def time_target_line(runs: list[Run], others: list[str]) -> str:
    """Median time to 89% validation accuracy: the service's at most half the best other's."""
    budget = runs[0].budget
    target = f"- target: time to 89% validation accuracy at most {TARGET_TIME_RATIO} of the best "
    target += "other arm's (medians over repeats):"
    mine = _median_time([r for r in runs if r.arm == SERVICE], 0.89)
    theirs = {arm: _median_time([r for r in runs if r.arm == arm], 0.89) for arm in others}
    reached = {arm: t for arm, t in theirs.items() if t is not None}
    if mine is None:
        return f"{target} the service's median run did not reach 89% in {budget:.0f} s: MISSED"
    if not reached:
        met = mine <= budget * TARGET_TIME_RATIO
        return (
            f"{target} service {mine:.0f} s; no other arm's median run reached 89% in "
            f"{budget:.0f} s, so the best other's time is over {budget:.0f} s and the target "
            f"needs the service within {budget * TARGET_TIME_RATIO:.0f} s: "
            f"{'PASS' if met else 'MISSED (not shown)'}"
        )
    best = min(reached, key=reached.__getitem__)
    ratio = mine / reached[best]
    return (
        f"{target} service {mine:.0f} s vs {best} {reached[best]:.0f} s, ratio {ratio:.2f} "
        f"(target <= {TARGET_TIME_RATIO}): {'PASS' if ratio <= TARGET_TIME_RATIO else 'MISSED'}"
    )


def revision_line() -> str:
    """The git revision at start, with a warning when the working tree differed from it."""
    revision = common.REVISION_AT_START
    if revision.endswith("+dirty"):
        return (
            f"- WARNING: uncommitted changes in the working tree (git revision {revision}): "
            "these figures cannot be reproduced from a commit"
        )
    return f"- git revision {revision} (working tree clean)"


COLORS = dict(
    zip(ARMS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"), strict=True)
)


def plot(runs: list[Run], arms: list[str], path: Path, title: str) -> None:
    """Best-so-far validation accuracy against wall time (lines), and each arm's retrained test
    accuracy (mean ± sd over runs) marked just after the budget's end (diamonds)."""
    budget = runs[0].budget / 60
    fig, ax = common.axes((8.5, 5.2))
    shown = _draw_validation(ax, runs, arms) + _draw_test(ax, runs, arms, budget)
    ax.axvline(budget, color="grey", linewidth=0.8, linestyle="--")
    for threshold in THRESHOLDS:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=0.8)
    if shown:  # the curves' ends and the test marks; earlier steps may start below
        ax.set_ylim(min(min(shown) - 0.01, 0.87), max(max(shown), 0.9) + 0.005)
    common.save_plot(
        fig,
        ax,
        path,
        xlabel="wall time since launch (min); dashed: the budget's end",
        ylabel="accuracy: validation, best so far (lines); test, retrained (diamonds)",
        title=title,
    )


def _draw_validation(ax, runs: list[Run], arms: list[str]) -> list[float]:
    """Every run's best-so-far validation curve, one colour per arm; returns the curves' ends."""
    ends = []
    for arm in arms:
        for i, run in enumerate(r for r in runs if r.arm == arm):
            xs, ys = run.curve()
            if xs:
                minutes = [x / 60 for x in xs]
                ax.step(
                    minutes,
                    ys,
                    where="post",
                    color=COLORS[arm],
                    alpha=0.8,
                    label=arm if i == 0 else None,
                )
                ends.append(ys[-1])
    return ends


def _draw_test(ax, runs: list[Run], arms: list[str], budget: float) -> list[float]:
    """Each arm's retrained test accuracy, mean ± sd over runs, side by side after the budget;
    returns the bars' ends."""
    ends = []
    for k, arm in enumerate(arms):
        tests = _present([r.test() for r in runs if r.arm == arm])
        if tests:
            mean = statistics.fmean(tests)
            sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
            x = budget * (1.03 + 0.025 * k)
            ax.errorbar(x, mean, yerr=sd, fmt="D", color=COLORS[arm], capsize=3)
            ends += [mean - sd, mean + sd]
    if ends:
        ax.text(budget * 1.02, max(ends) + 0.002, "test,\nretrained", fontsize=8, va="bottom")
    return ends


def conditions(args: argparse.Namespace, n_test: int) -> str:
    """What was measured and how: the paragraph above the tables."""
    from importlib.metadata import version

    data = f"{args.limit_train} training-file images" if args.limit_train else "all 60,000"
    uses_kerastuner = any(arm in KERASTUNER for arm in args.methods)
    sentences = [
        f"Fashion-MNIST, {data} (the service's seeded 10% validation split), at most "
        f"{args.max_epochs} epochs a trial, {args.budget:.0f} s of wall time per run from "
        f"process launch, repeats: {args.repeats}, in a rotated order "
        f"(repeat r: seed (r + 1) x {SEED_STRIDE:,})"
        + (f"; KerasTuner {version('keras-tuner')}." if uses_kerastuner else "."),
        "Best val acc: the validation accuracy of the configuration the service's rule chooses "
        "(complete trials only; every finished KerasTuner trial).",
        f"Test acc: that configuration retrained (seeds: {args.seeds}) by the service's "
        "harness (early stopping on validation, best epoch restored), each model evaluated once "
        f"on the {n_test:,} test images, after every arm of the repeat has searched, in "
        f"{RETRAIN_PROCESSES} one-thread processes side by side (the service's default retrain); "
        "'retrain s': its seeds' training seconds, summed.",
        "s to 88%/89%: when that best validation accuracy so far first reached 88% or 89%, "
        "median over repeats (a run that never did counts as after the budget); (k/n) runs "
        "reached it.",
        "Networks: distinct configurations whose training ended in the budget (a Hyperband "
        "round continues its network), per hour of budget.",
        "CPU s: user + system time of the run's process tree.",
        "Start-up: launch to the first trial's start.",
        "Load: 1-minute load average at the budget's end, the run's own threads included.",
    ]
    return " ".join(sentences)


# --- a full run over several invocations ---------------------------------------------------------

# What must match for repeats to be pooled: the figures depend on them.
SETTINGS = ("budget", "max_epochs", "seeds", "limit_train", "methods")


class SettingsDiffer(Exception):
    """The repeats file was made with other settings."""


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    settings = {name: getattr(args, name) for name in SETTINGS}
    # Repeats seeded r + 1 (before the stride) are shifted copies of each other: not pooled.
    return json.loads(json.dumps({**settings, "seed_stride": SEED_STRIDE}))


def load_repeats(path: Path, settings: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The repeats recorded in `path` (one JSON line each), by repeat number."""
    repeats: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return repeats
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry["settings"] != settings:
            theirs = entry["settings"]
            changed = ", ".join(
                f"{k}={theirs.get(k)!r}" for k in settings if theirs.get(k) != settings[k]
            )
            raise SettingsDiffer(
                f"{path} line {number} was recorded with other settings ({changed}); run with "
                "those, or give another --repeats-file"
            )
        repeats[entry["repeat"]] = entry
    return repeats


def repeat_entry(repeat: int, runs: list[Run], settings: dict[str, Any]) -> dict[str, Any]:
    """A repeat's line in the repeats file; its revision is the one at start (the repeats file
    itself may live in the checkout, and the invocation's earlier repeats have changed it)."""
    return {
        "settings": settings,
        "repeat": repeat,
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "revision": common.REVISION_AT_START,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": [asdict(run) for run in runs],
    }


def runs_of(entry: dict[str, Any]) -> list[Run]:
    return [
        Run(**{**run, "networks": [Network(**network) for network in run["networks"]]})
        for run in entry["runs"]
    ]


def provenance_lines(repeats: dict[int, dict[str, Any]]) -> list[str]:
    """Where and at which revision each recorded repeat ran, and what that means."""
    lines = [
        f"- repeat {r}: finished {e['finished']}, revision {e['revision']}, {e['machine']}"
        for r, e in sorted(repeats.items())
    ]
    revisions = {e["revision"] for e in repeats.values()}
    if any(revision.endswith("+dirty") for revision in revisions):
        lines.append(
            "- WARNING: a repeat ran with uncommitted changes: its figures cannot be reproduced "
            "from a commit"
        )
    if len(revisions) > 1:
        lines.append(
            "- the repeats ran at different revisions; the arms of one repeat always share one"
        )
    return lines


# --- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = common.parser(
        "bench_search.py",
        "Same search space, data split, callbacks, threads and wall-clock budget: the service's "
        "default search (TPE + Hyperband) against TPE without pruning, random sampling with "
        "Hyperband, and KerasTuner's Hyperband and BayesianOptimization. Each run's choice is "
        "retrained with several seeds and tested once per model; prints validation and test "
        "accuracy, paired differences with 95% intervals, time to 88% and 89%, networks and "
        "epochs per hour, CPU and start-up seconds, checks the targets, and draws best-so-far "
        "validation accuracy against wall time with the test accuracies in one PNG.",
        quick=f"{QUICK['budget']:.0f} s per arm, 1 repeat, {QUICK['limit_train']} images, "
        f"{QUICK['max_epochs']} epochs, 1 retrain seed",
        png="search.png",
    )
    common.add_data_flags(
        parser,
        limit="all 60,000",
        quick=QUICK["limit_train"],
        absent="else the service's own lookup",
    )
    common.add_plot_flag(parser, "search.png", "best-so-far validation and retrained test accuracy")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"wall-clock budget of each run from its launch (default {FULL['budget']:.0f}; with "
        f"--quick {QUICK['budget']:.0f})",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"runs per arm, repeat r in the arms' order rotated by r, seed (r + 1) x "
        f"{SEED_STRIDE:,} (default "
        f"{FULL['repeats']}; with --quick {QUICK['repeats']})",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=ARMS,
        default=list(ARMS),
        metavar="ARM",
        help=f"which arms to run, in this order for repeat 0: {', '.join(ARMS)} (default all)",
    )
    parser.add_argument(
        "--max-epochs",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"epochs a trial (and a retrain) may run at most, every arm (default "
        f"{FULL['max_epochs']}, the service's; with --quick {QUICK['max_epochs']})",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"seeds each run's choice is retrained with (default {FULL['seeds']}; with --quick "
        f"{QUICK['seeds']})",
    )
    parser.add_argument(
        "--repeats-file",
        type=Path,
        metavar="FILE",
        help="append each finished repeat to FILE (JSON lines) and skip the repeats it holds: a "
        "full run over several invocations",
    )
    parser.add_argument(
        "--new-repeats",
        type=positive_int,
        metavar="K",
        help="with --repeats-file: run at most K repeats not yet recorded, then report",
    )
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--kerastuner-child", metavar="JSONL", help=argparse.SUPPRESS)
    parser.add_argument("--tuner", choices=("hyperband", "bayes"), help=argparse.SUPPRESS)
    parser.add_argument("--kerastuner-role", help=argparse.SUPPRESS)  # chief, tuner0, ...
    return parser


def missing_packages(arms: list[str]) -> list[str]:
    """What the chosen KerasTuner arms need and is not installed."""
    needed = {"keras_tuner"} if any(arm in KERASTUNER for arm in arms) else set()
    if "kerastuner-bayes" in arms:
        needed |= {"sklearn", "scipy"}  # KerasTuner's BayesianOptimization imports both
    return sorted(name for name in needed if importlib.util.find_spec(name) is None)


def rotated(arms: list[str], repeat: int) -> list[str]:
    """Repeat r's order: the arms rotated by r (rows of a cyclic Latin square)."""
    shift = repeat % len(arms)
    return arms[shift:] + arms[:shift]


def searched(run: Run) -> str:
    """One line on a run's search, printed as the benchmark goes."""
    best = run.best()
    return (
        f"{run.distinct_networks()} networks, {run.epochs()} epochs, best validation "
        f"{'-' if best is None else f'{best:.4f}'}, start-up "
        f"{'-' if run.startup is None else f'{run.startup:.1f}'} s, CPU {run.cpu_seconds:.0f} s "
        f"({run.stopped})"
    )


def retrained(run: Run) -> str:
    """One line on a run's retrained choice."""
    test = run.test()
    if test is None:
        return "no complete trial to retrain"
    return f"retrained test {test:.4f} ({run.retrain_seconds:.0f} s of training)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    common.fill_defaults(args, QUICK, FULL)
    if args.kerastuner_child:
        return kerastuner_child(args)
    if not args.budget > 0:
        print("--budget must be a positive number of seconds", file=sys.stderr)
        return 2
    missing = missing_packages(args.methods)
    if missing:
        print(
            f"not installed: {', '.join(missing)}: pip install -e '.[dev]' (or leave the "
            "KerasTuner arms out of --methods)",
            file=sys.stderr,
        )
        return 2
    from search.data import load_test
    from search.errors import DataError

    try:  # before any run: a missing file fails now, not after hours (retrains load their own)
        service_split(args)
        test = load_test("fashion", args.data_dir)
    except DataError as exc:
        print(f"bench_search.py: {exc}", file=sys.stderr)
        return 2
    if args.new_repeats is not None and args.repeats_file is None:
        print("--new-repeats needs --repeats-file", file=sys.stderr)
        return 2
    settings = settings_of(args)
    try:
        recorded = load_repeats(args.repeats_file, settings) if args.repeats_file else {}
    except (SettingsDiffer, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"bench_search.py: {exc}", file=sys.stderr)
        return 2
    recorded = {r: entry for r, entry in recorded.items() if r < args.repeats}
    todo = [r for r in range(args.repeats) if r not in recorded][: args.new_repeats]
    arms = list(args.methods)
    total = args.budget * len(todo) * len(arms)
    print(
        f"{len(arms)} arms x {len(todo)} repeats x {args.budget:.0f} s: {total / 60:.0f} min "
        f"of search, then each run's choice retrained (seeds: {args.seeds})"
        + (f"; {len(recorded)} repeats recorded in {args.repeats_file}" if recorded else ""),
        flush=True,
    )
    runs = [run for r in sorted(recorded) for run in runs_of(recorded[r])]
    with tempfile.TemporaryDirectory(prefix="bench_search_") as folder:
        for repeat in todo:
            repeat_runs = []
            for position, arm in enumerate(rotated(arms, repeat)):
                print(f"repeat {repeat}, position {position}: {arm} ...", flush=True)
                run = run_arm(arm, repeat, position, args, Path(folder))
                repeat_runs.append(run)
                print(f"  {searched(run)}", flush=True)
            print(f"repeat {repeat}: retraining each run's choice ...", flush=True)
            seconds = retrain(repeat_runs, args)
            for run in repeat_runs:
                print(f"  {run.arm}: {retrained(run)}", flush=True)
            print(f"  retrain: {seconds:.0f} s", flush=True)
            runs += repeat_runs
            if args.repeats_file:
                recorded[repeat] = repeat_entry(repeat, repeat_runs, settings)
                with args.repeats_file.open("a") as out:
                    out.write(json.dumps(recorded[repeat]) + "\n")
    missing = [r for r in range(args.repeats) if r not in recorded] if args.repeats_file else []
    if missing:
        args.no_record = True  # a partial table is printed, not recorded (nor its default plot)
    plot_path = common.plot_path(args, "search.png")
    body = [
        conditions(args, len(test[1])),
        "",
        *(
            [f"PARTIAL: repeats {missing} not yet run; run the same command again to add them"]
            if missing
            else []
        ),
        *(provenance_lines(recorded) if args.repeats_file else [revision_line()]),
        "",
        common.markdown_table(SUMMARY_HEADERS, summary_rows(runs, arms)),
        "",
        "Per run:",
        "",
        common.markdown_table(RUN_HEADERS, run_rows(runs)),
        "",
        "Chosen configurations:",
        "",
        *chosen_lines(runs),
        "",
        *paired_lines(runs, arms),
        "",
        *target_lines(runs, arms),
    ]
    if plot_path is not None:
        data_text = f"{args.limit_train} images" if args.limit_train else "60,000 images"
        title = (
            f"best-so-far validation and retrained test accuracy, {args.budget:.0f} s budget, "
            f"{args.repeats} repeats ({data_text})"
        )
        plot(runs, arms, plot_path, title)
        body.append(f"\nplot: {plot_path.name}")
    common.report("bench_search", "\n".join(body), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
