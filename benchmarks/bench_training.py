"""Training speed of the service against plain Keras, and where the time of a trial goes.

For each model shape, side by side in one process:
- the service's `search.study.objective.Objective` on a SQLite study (one enqueued trial, NopPruner,
  asked and told like `study.optimize` does), against a plain `model.fit` of the same
  `build_dense` model with the same batch size;
- plain fit with XLA `jit_compile` off/on and `steps_per_execution` 1, 8, 32;
- the fixed per-trial overhead of the objective: build + compile, the extra time of the first
  epoch (tracing), and the time of the trial's storage calls (suggest, report, set_user_attr,
  ask/tell) against SQLite;
- achieved training GFLOP/s (6 x dense-layer MACs per example x training examples per epoch /
  seconds per epoch) against the single-precision matmul peak measured in the same run.

s/epoch is the median of the epochs after the first; the first epoch (tracing, plus fit's set-up)
is shown separately. Timings on a shared 2-core machine vary by 10% or more between runs: compare
rows of one run, not figures of different runs. Data: Fashion-MNIST from --data-dir / env
SEARCH_DATA_DIR, else the service's own lookup; synthetic images, said so, only when that finds
no copy.

    python benchmarks/bench_training.py --quick --no-record   # one shape: under 2 minutes
    python benchmarks/bench_training.py     # 4 shapes x 8 variants x 4 epochs: about 10 minutes
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import common
import numpy as np

INPUT_SIZE, N_CLASSES = 28 * 28, 10
DEFAULT_BATCH = 128
DROPOUT = 0.2  # every hidden layer; a typical sampled rate (dropout costs a little time)
DEFAULT_MODELS = ("128", "512-512", "1024x3", "380-210@256")
QUICK_MODELS = ("380-210@256",)
QUICK = {"limit_train": 5000, "epochs": 4}
FULL = {"limit_train": None, "epochs": 4}
SERVICE_MAX_EPOCHS = 20  # the fashion preset's max_epochs: what the overhead is compared with
PEAK_SIZE, PEAK_REPEATS = 2048, 5
NOISE = 0.05  # a setting must beat the default by this fraction to be recommended


@dataclass(frozen=True)
class Shape:
    """A network of the search space: hidden layer sizes and the batch size it trains with."""

    hidden: tuple[int, ...]
    batch: int = DEFAULT_BATCH

    @property
    def label(self) -> str:
        return "-".join(str(n) for n in (INPUT_SIZE, *self.hidden, N_CLASSES))

    @property
    def macs_per_example(self) -> int:
        sizes = (INPUT_SIZE, *self.hidden, N_CLASSES)
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


@dataclass(frozen=True)
class Variant:
    """One way of training a shape. kind "objective" is the service; "fit" is plain Keras."""

    name: str
    kind: str = "fit"
    jit: bool = False
    steps_per_execution: int = 1
    validation: bool = False


OBJECTIVE = Variant("objective", kind="objective")
PLAIN = Variant("fit")
VARIANTS = (
    OBJECTIVE,
    PLAIN,
    Variant("fit+val", validation=True),
    Variant("fit spe=8", steps_per_execution=8),
    Variant("fit spe=32", steps_per_execution=32),
    Variant("fit jit", jit=True),
    Variant("fit jit spe=8", jit=True, steps_per_execution=8),
    Variant("fit jit spe=32", jit=True, steps_per_execution=32),
)
QUICK_VARIANTS = ("objective", "fit", "fit+val", "fit spe=8", "fit spe=32", "fit jit")


@dataclass
class Timing:
    """Measured figures of one (shape, variant)."""

    shape: Shape
    variant: Variant
    first_epoch: float
    epochs: list[float]  # the epochs after the first
    build: float  # build_dense: layers + compile
    storage: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> calls, s
    setup: float = 0.0  # objective only: clear_session, seed, build (no storage) before fit

    @property
    def per_epoch(self) -> float:
        return statistics.median(self.epochs) if self.epochs else self.first_epoch

    @property
    def first_extra(self) -> float:
        return self.first_epoch - self.per_epoch if self.epochs else math.nan


def parse_shape(text: str) -> Shape:
    """'512-512', '1024x3' (three layers of 1024), '380-210@256' (batch 256); 784/10 optional."""
    body, _, batch = text.strip().partition("@")
    hidden: list[int] = []
    try:
        for part in body.split("-"):
            size, _, repeat = part.partition("x")
            hidden += [int(size)] * (int(repeat) if repeat else 1)
        batch_size = int(batch) if batch else DEFAULT_BATCH
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad model {text!r}: give hidden sizes such as 512-512, 1024x3 or 380-210@256"
        ) from None
    if len(hidden) > 2 and hidden[0] == INPUT_SIZE and hidden[-1] == N_CLASSES:
        hidden = hidden[1:-1]  # the full form 784-128-10
    if not hidden or min(hidden) < 1 or batch_size < 1:
        raise argparse.ArgumentTypeError(f"bad model {text!r}: sizes and batch must be positive")
    return Shape(tuple(hidden), batch_size)


def build_parser() -> argparse.ArgumentParser:
    parser = common.parser(
        "bench_training.py",
        "Seconds per epoch of the service's objective against plain Keras fit (XLA on/off, "
        "steps_per_execution 1/8/32), the per-trial overhead, and GFLOP/s against the "
        "measured matmul peak, on Fashion-MNIST.",
        quick=f"one model, {QUICK['limit_train']} images, {QUICK['epochs']} epochs, "
        f"variants {', '.join(QUICK_VARIANTS)}; --epochs/--limit-train/--models still override",
    )
    common.add_data_flags(
        parser,
        limit="all 60,000",
        quick=QUICK["limit_train"],
        absent="without it, the service's own lookup, and synthetic data of the same shape, "
        "said so, only when that finds no copy",
    )
    parser.add_argument(
        "--epochs",
        metavar="N",
        type=int,
        default=None,
        help="epochs per variant; the first is timed apart (tracing), s/epoch is the median of "
        f"the rest (default {FULL['epochs']}; {QUICK['epochs']} with --quick)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        type=parse_shape,
        default=None,
        metavar="HIDDEN[@BATCH]",
        help=f"shapes by hidden sizes, optional batch (default {DEFAULT_BATCH}): e.g. 128 "
        f"512-512 1024x3 380-210@256 (default {' '.join(DEFAULT_MODELS)}; "
        f"{' '.join(QUICK_MODELS)} with --quick)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    common.fill_defaults(args, QUICK, FULL)
    epochs, limit_train = args.epochs, args.limit_train
    shapes = args.models or [
        parse_shape(m) for m in (QUICK_MODELS if args.quick else DEFAULT_MODELS)
    ]
    variants = [v for v in VARIANTS if not args.quick or v.name in QUICK_VARIANTS]
    if epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is timed apart)")

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = common.load_fashion(args.data_dir, limit_train)
    data_note = (
        "SYNTHETIC images (no Fashion-MNIST copy found)"
        if data.source == "synthetic"
        else f"Fashion-MNIST from {data.source}"
    )
    print(f"data: {data_note}; {len(data.x_train)} training / {len(data.x_val)} validation images")

    peak = measure_peak()
    print(
        f"peak: {peak:.1f} GFLOP/s (tf.linalg.matmul {PEAK_SIZE}x{PEAK_SIZE} float32, best of "
        f"{PEAK_REPEATS})"
    )
    warm_up(data)

    timings: list[Timing] = []
    for shape in shapes:
        for variant in variants:
            print(f"  timing {shape.label} @{shape.batch} {variant.name} ...", flush=True)
            if variant.kind == "objective":
                timings.append(time_objective(shape, data, epochs, limit_train, args.data_dir))
            else:
                timings.append(time_fit(shape, variant, data, epochs))

    # The cores are shared: the best of a measurement before and after the runs is the peak.
    peak = max(peak, measure_peak())
    print(f"peak, best of before and after the runs: {peak:.1f} GFLOP/s")
    n_train = len(data.x_train)
    main_table = speed_table(timings, n_train, peak)
    overhead = overhead_table(timings)
    advice = recommendations(timings)
    print()
    print(
        f"Training speed ({n_train} training images per epoch, {epochs} epochs per variant; "
        f"s/epoch = median after the first; GFLOP/s counts training only, 6 x MACs)"
    )
    print(common.text_table(*main_table))
    print()
    print(f"Per-trial overhead of the objective (seconds; % of a {SERVICE_MAX_EPOCHS}-epoch trial)")
    print(common.text_table(*overhead))
    storage = storage_detail(timings)
    print("storage calls per trial (SQLite, outermost calls):")
    for line in storage:
        print(f"  {line}")
    print()
    print("Fastest plain-fit setting per shape (jit_compile, steps_per_execution):")
    for line in advice:
        print(f"  {line}")

    if args.no_record:
        print(f"\nnot recorded (--no-record); without it a section is appended to {common.RESULTS}")
    else:
        path = record(main_table, overhead, storage, advice, data_note, peak, n_train, epochs)
        print(f"\nappended to {path}")
    return 0


# --- measurements ---------------------------------------------------------------------------


def measure_peak() -> float:
    """Single-precision matmul GFLOP/s of this machine now: best of several large products."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((PEAK_SIZE, PEAK_SIZE), dtype=np.float32))
    b = tf.constant(rng.random((PEAK_SIZE, PEAK_SIZE), dtype=np.float32))
    tf.linalg.matmul(a, b)[0, 0].numpy()  # warm-up: thread pools, oneDNN kernels
    best = math.inf
    for _ in range(PEAK_REPEATS):
        start = time.perf_counter()
        tf.linalg.matmul(a, b)[0, 0].numpy()  # reading one element waits for the product
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIZE**3 / best / 1e9


def warm_up(data: Any) -> None:
    """One tiny fit, so the first measured variant does not pay the process's one-time costs."""
    import keras

    from models import ModelParams, build_dense

    model = build_dense(ModelParams(units=(8,), dropouts=(0.0,)), data.input_shape)
    model.fit(data.x_train[:256], data.y_train[:256], batch_size=64, epochs=1, verbose=0)
    keras.backend.clear_session(free_memory=True)


def model_params(shape: Shape) -> Any:
    from models import ModelParams

    return ModelParams(
        units=shape.hidden, dropouts=(DROPOUT,) * len(shape.hidden), batch_size=shape.batch
    )


class _EpochClock:
    """perf_counter at every epoch end, as a Keras callback."""

    def __init__(self) -> None:
        import keras

        self.ends: list[float] = []
        clock = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                clock.ends.append(time.perf_counter())

        self.callback = _Callback()


def split_epochs(fit_start: float, ends: list[float]) -> tuple[float, list[float]]:
    """(first epoch from fit's call, durations of the later epochs) from epoch-end times."""
    if not ends:
        raise RuntimeError("training ended before its first epoch")
    later = [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]
    return ends[0] - fit_start, later


def time_fit(shape: Shape, variant: Variant, data: Any, epochs: int) -> Timing:
    """Plain Keras: build_dense and model.fit, nothing else (validation only in fit+val)."""
    import keras

    from models import build_dense
    from search.study.config import EVAL_BATCH

    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    model = build_dense(model_params(shape), data.input_shape, jit_compile=variant.jit)
    # compile() only stores it; fit() reads it when it builds the train function, so setting it
    # before the first fit equals compiling with it (build_dense has no such argument).
    model.steps_per_execution = variant.steps_per_execution
    build = time.perf_counter() - start
    clock = _EpochClock()
    extra: dict[str, Any] = {}
    if variant.validation:
        extra = {
            "validation_data": (data.x_val, data.y_val),
            "validation_batch_size": EVAL_BATCH,
        }
    fit_start = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=shape.batch,
        epochs=epochs,
        callbacks=[clock.callback],
        verbose=0,
        **extra,
    )
    first, later = split_epochs(fit_start, clock.ends)
    return Timing(shape, variant, first, later, build)


class _StorageTimer:
    """Wraps every public method of an Optuna storage instance and logs each call's time.

    Only outermost calls are logged (a storage method calling another is timed once).
    """

    def __init__(self, storage: Any) -> None:
        self.events: list[tuple[str, str, float, float]] = []  # method, attr key, start, end
        self.enabled = False
        self._depth = 0
        for name in dir(storage):
            method = getattr(storage, name)
            if not name.startswith("_") and callable(method):
                setattr(storage, name, self._wrap(name, method))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled or self._depth:
                return method(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                key = ""
                if name == "set_trial_user_attr":
                    key = args[1] if len(args) > 1 else kwargs.get("key", "")
                self.events.append((name, str(key), start, time.perf_counter()))

        return timed

    def seconds_until(self, moment: float) -> float:
        return sum(end - start for _, _, start, end in self.events if end <= moment)

    def summary(self) -> dict[str, tuple[int, float]]:
        """method -> (calls, seconds)."""
        totals: dict[str, tuple[int, float]] = {}
        for name, _, start, end in self.events:
            calls, seconds = totals.get(name, (0, 0.0))
            totals[name] = (calls + 1, seconds + end - start)
        return dict(sorted(totals.items()))


def time_objective(
    shape: Shape, data: Any, epochs: int, limit_train: int | None, data_dir: str | None
) -> Timing:
    """The service's Objective on a SQLite study: one enqueued trial, asked and told."""
    import optuna

    import search.study.objective as objective_module
    from search.study.space import to_trial_params
    from search.study.studyfile import PRESETS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = PRESETS["fashion"].with_overrides(
        study_name=f"bench-{shape.label}-{shape.batch}",
        max_epochs=epochs,
        patience=epochs,  # early stopping must not end the timed run
        limit_train=limit_train,
        data_dir=data_dir,
        pruner="none",
    )
    hook_ends: list[float] = []
    objective = objective_module.Objective(
        config, data, epoch_hook=lambda _n, _e, _logs: hook_ends.append(time.perf_counter())
    )
    build_times: list[float] = []
    original_build = objective_module.build_dense

    def timed_build(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original_build(*args, **kwargs)
        finally:
            build_times.append(time.perf_counter() - start)

    with common.fresh_database() as url:
        rdb = optuna.storages.RDBStorage(url)
        # The cached wrapper a study puts around an RDBStorage is what a trial calls; timing
        # it catches every call (it reaches the RDB through private methods too).
        storage = optuna.storages.get_storage(rdb)
        timer = _StorageTimer(storage)
        study = optuna.create_study(
            storage=storage,
            study_name=config.study_name,
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=config.seed),
            pruner=optuna.pruners.NopPruner(),
        )
        # The space samples weight decay on a log scale, never 0: a service trial has at least
        # the lowest (the plain-fit rows train without).
        lowest = config.space.weight_decay[0]
        params = model_params(shape)
        study.enqueue_trial(to_trial_params(replace(params, weight_decay=lowest)))
        timer.enabled = True
        objective_module.build_dense = timed_build  # timing only; calls straight through
        try:
            call_start = time.perf_counter()
            trial = study.ask()
            value = objective(trial)
            study.tell(trial, value)
        finally:
            objective_module.build_dense = original_build
            timer.enabled = False
            rdb.engine.dispose()
    # fit starts right after the objective stores n_params (it only builds its callback list).
    fit_start = next((e for name, key, _, e in timer.events if key == "n_params"), None)
    if fit_start is None:
        raise RuntimeError("the objective did not store n_params; cannot tell when fit started")
    first, later = split_epochs(fit_start, hook_ends)
    # The epochs' own storage calls (report, should_prune) stay in the epoch times, as in the
    # service; the set-up excludes the storage calls made before fit (they are counted apart).
    setup = fit_start - call_start - timer.seconds_until(fit_start)
    return Timing(shape, OBJECTIVE, first, later, sum(build_times), timer.summary(), setup)


# --- tables ---------------------------------------------------------------------------------

Table = tuple[list[str], list[list[str]]]
WRITES = ("set_", "create_", "delete_")


def speed_table(timings: list[Timing], n_train: int, peak: float) -> Table:
    headers = ["model", "batch", "variant", "s/epoch", "spread", "1st epoch s", "x plain fit",
               "GFLOP/s", "% of peak"]  # fmt: skip
    rows = []
    for t in timings:
        # The objective against a plain fit with the service's own settings; the rest against
        # Keras' defaults.
        plain = _find(timings, t.shape, service_fit() if t.variant.kind == "objective" else PLAIN)
        gflops = 6 * t.shape.macs_per_example * n_train / t.per_epoch / 1e9
        spread = f"{min(t.epochs):.2f}-{max(t.epochs):.2f}" if len(t.epochs) > 1 else "-"
        rows.append([
            t.shape.label, str(t.shape.batch), t.variant.name, f"{t.per_epoch:.3f}", spread,
            f"{t.first_epoch:.2f}",
            f"{t.per_epoch / plain.per_epoch:.2f}" if plain else "-",
            f"{gflops:.1f}", f"{100 * gflops / peak:.1f}",
        ])  # fmt: skip
    return headers, rows


def service_fit() -> Variant:
    """The plain-fit variant with the settings build_dense gives the service's models."""
    from models.dense import STEPS_PER_EXECUTION

    return Variant(f"fit spe={STEPS_PER_EXECUTION}", steps_per_execution=STEPS_PER_EXECUTION)


def overhead_table(timings: list[Timing]) -> Table:
    headers = ["model", "batch", "build+compile s", "other set-up s", "1st-epoch extra s",
               "storage writes s (calls)", "storage reads s (calls)", "total s",
               f"% of {SERVICE_MAX_EPOCHS}-epoch trial"]  # fmt: skip
    rows = []
    for t in timings:
        if t.variant.kind != "objective":
            continue
        writes = [(n, s) for name, (n, s) in t.storage.items() if name.startswith(WRITES)]
        reads = [(n, s) for name, (n, s) in t.storage.items() if not name.startswith(WRITES)]
        w_calls, w_sec = sum(n for n, _ in writes), sum(s for _, s in writes)
        r_calls, r_sec = sum(n for n, _ in reads), sum(s for _, s in reads)
        extra = max(t.first_extra, 0.0) if math.isfinite(t.first_extra) else 0.0
        total = t.setup + extra + w_sec + r_sec
        share = total / (total + SERVICE_MAX_EPOCHS * t.per_epoch)
        rows.append([
            t.shape.label, str(t.shape.batch), f"{t.build:.2f}", f"{t.setup - t.build:.2f}",
            f"{extra:.2f}", f"{w_sec:.3f} ({w_calls})", f"{r_sec:.3f} ({r_calls})",
            f"{total:.2f}", f"{100 * share:.1f}",
        ])  # fmt: skip
    return headers, rows


def storage_detail(timings: list[Timing]) -> list[str]:
    lines = []
    for t in timings:
        if t.variant.kind == "objective":
            calls = ", ".join(
                f"{name} x{n} {1000 * s:.0f} ms" for name, (n, s) in t.storage.items()
            )
            lines.append(f"{t.shape.label} @{t.shape.batch}: {calls}")
    return lines


def recommendations(timings: list[Timing]) -> list[str]:
    """Fastest jit/steps_per_execution per shape, and the setting best across shapes."""
    lines = []
    ratios: dict[tuple[bool, int], list[float]] = {}
    shapes = list(dict.fromkeys(t.shape for t in timings))
    for shape in shapes:
        plain = _find(timings, shape, PLAIN)
        candidates = [
            t for t in timings if t.shape == shape and t.variant.kind == "fit"
            and not t.variant.validation
        ]  # fmt: skip
        if plain is None or not candidates:
            continue
        for t in candidates:
            key = (t.variant.jit, t.variant.steps_per_execution)
            ratios.setdefault(key, []).append(t.per_epoch / plain.per_epoch)
        best = min(candidates, key=lambda t: t.per_epoch)
        trial = {  # a service trial: first epoch + the rest, at the preset's max_epochs
            id(t): t.first_epoch + (SERVICE_MAX_EPOCHS - 1) * t.per_epoch for t in candidates
        }
        best_trial = min(candidates, key=lambda t: trial[id(t)])
        gain = plain.per_epoch / best.per_epoch
        # Clear only when faster by NOISE and its slowest epoch beats the default's fastest.
        clear = gain >= 1 + NOISE and max(best.epochs, default=best.per_epoch) < min(
            plain.epochs, default=plain.per_epoch
        )
        head = f"{shape.label} @{shape.batch}: "
        if best is plain:
            head += "Keras' default (jit_compile=False, steps_per_execution=1) is fastest"
        elif not clear:
            head += (f"no setting clearly beats Keras' default (best {_setting(best)}, "
                     f"{gain:.2f}x)")  # fmt: skip
        else:
            head += (f"{_setting(best)} is fastest, {best.per_epoch:.3f} s/epoch, {gain:.2f}x "
                     f"the speed of Keras' default")  # fmt: skip
        head += (f"; per {SERVICE_MAX_EPOCHS}-epoch trial (first epoch included) "
                 f"{_setting(best_trial)}: {trial[id(best_trial)]:.1f} s vs Keras' default "
                 f"{trial[id(plain)]:.1f} s")  # fmt: skip
        lines.append(head)
    complete = {k: v for k, v in ratios.items() if len(v) == len(shapes)}
    if len(shapes) > 1 and complete:
        key, values = min(complete.items(), key=lambda kv: statistics.geometric_mean(kv[1]))
        mean = statistics.geometric_mean(values)
        lines.append(
            f"across shapes: jit_compile={key[0]}, steps_per_execution={key[1]} has the best "
            f"geometric-mean time, {mean:.2f}x Keras' default's"
        )
    lines.append(
        f'("clearly": at least {100 * NOISE:.0f}% faster and its slowest timed epoch beats the '
        "default's fastest; on a shared machine smaller differences are noise). The service "
        "trains with jit_compile=False and steps_per_execution=32 (models/dense.py); its "
        "objective row is compared with the fit row of those settings"
    )
    return lines


def _setting(t: Timing) -> str:
    return f"jit_compile={t.variant.jit}, steps_per_execution={t.variant.steps_per_execution}"


def _find(timings: list[Timing], shape: Shape, variant: Variant) -> Timing | None:
    return next((t for t in timings if t.shape == shape and t.variant == variant), None)


# --- record ---------------------------------------------------------------------------------


def record(
    speed: Table,
    overhead: Table,
    storage: list[str],
    advice: list[str],
    data_note: str,
    peak: float,
    n_train: int,
    epochs: int,
) -> Path:
    """Append a dated section to benchmarks/RESULTS.md (machine, versions, git revision and the
    exact command come from common.append_results)."""
    body = [
        f"- data: {data_note}; {n_train} training images per epoch, {epochs} epochs per variant",
        f"- peak: {peak:.1f} GFLOP/s (tf.linalg.matmul {PEAK_SIZE}x{PEAK_SIZE} float32, best "
        f"of {PEAK_REPEATS} before and {PEAK_REPEATS} after the runs); GFLOP/s counts training "
        "only (6 x dense MACs per example)",
        "- s/epoch: median of the epochs after the first; spread: fastest-slowest of those",
        "",
        common.markdown_table(*speed),
        "",
        f"Per-trial overhead of the objective (% of a {SERVICE_MAX_EPOCHS}-epoch trial):",
        "",
        common.markdown_table(*overhead),
        "",
        *[f"- storage calls, {line}" for line in storage],
        "",
        "Fastest plain-fit setting per shape:",
        "",
        *[f"- {line}" for line in advice],
    ]
    return common.append_results("bench_training", "\n".join(body))


if __name__ == "__main__":
    sys.exit(main())
