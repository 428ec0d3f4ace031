"""Command line: `python -m search.run --study fashion` searches dense Keras networks.

This module parses the flags and resolves the config; `search.job` runs the stages. Order of
work, chosen so bad input never touches a stored study: flags and numbers, the storage URL's
syntax, the data files, the database connection, and only then the study itself.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import sys
from collections.abc import Sequence

from search.cli import Parser, positive_int, whole_number
from search.errors import USER_ERRORS, Terminated, UsageError, stop_on_sigterm
from search.job import run
from search.study.config import (
    PARETO_RETRAIN_TOP,
    PRUNERS,
    SAMPLERS,
    StudyConfig,
    default_data_dir,
    default_storage,
)
from search.study.session import PROG
from search.study.studyfile import PRESETS, load, preset_names
from storage.urls import mask_secrets


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


def _seed(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be zero or positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = PRESETS["fashion"]
    parser = Parser(
        prog=f"python -m {PROG}",
        description="Search dense Keras networks with Optuna; every run resumes the stored study.",
        # Wide enough that every flag's help stays on one line.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30, width=130),
    )
    flag = parser.add_argument
    flag(
        "--study",
        required=True,
        metavar="PRESET|FILE.toml",
        help=f"a preset ({', '.join(preset_names())}) or a study file: data, space, budget",
    )
    parser.add_storage_flag()
    flag("--study-name", metavar="NAME", help="study name in the storage; default: the preset")
    flag(
        "--n-trials",
        type=positive_int,
        metavar="N",
        help="target of finished (complete + "
        f"pruned) trials in the study, across runs and workers; default {d.n_trials}",
    )
    flag(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="end the search after this many seconds: no new trial starts and running trials "
        f"stop at their epoch's end, keeping their best epoch; default {d.timeout:.0f}",
    )
    flag("--sampler", choices=SAMPLERS, help="tpe (multivariate, grouped) or random; default tpe")
    flag(
        "--pruner",
        choices=PRUNERS,
        help="rule that stops weak trials early; default hyperband (with --pareto: the front rule "
        "and rungs; median or patient: the front rule alone)",
    )
    flag(
        "--max-epochs",
        type=positive_int,
        metavar="N",
        help=f"epochs a trial may run at most (the pruner's max resource); default {d.max_epochs}",
    )
    flag(
        "--patience",
        type=positive_int,
        metavar="N",
        help="a trial stops after N epochs "
        f"without a validation-accuracy gain; default {d.patience}",
    )
    flag(
        "--limit-train",
        type=positive_int,
        metavar="N",
        help="use only N training-file images, 10%% of them for validation (quick runs)",
    )
    flag(
        "--data-dir",
        metavar="PATH",
        help="built-in datasets: folder of the four IDX files; default: env "
        "SEARCH_DATA_DIR, Debian's copy, or a Keras download",
    )
    flag("--seed", type=_seed, metavar="N", help="seed of the sampler and of Keras; default 0")
    flag(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes on this machine sharing the study (and then the retrain), the "
        f"cores split between them; default {d.workers}",
    )
    flag(
        "--heartbeat",
        type=positive_int,
        metavar="SECONDS",
        help=f"seconds between trial heartbeats (silent trials are retried); default {d.heartbeat}",
    )
    flag(
        "--trials-per-process",
        type=positive_int,
        metavar="N",
        help="a worker process hands over to a fresh one after N trials (frees TensorFlow's "
        f"memory); default {d.trials_per_process}",
    )
    flag(
        "--no-warm-start",
        action="store_true",
        help="do not start a new study with the strong default configuration (README)",
    )
    flag(
        "--pareto",
        action="store_true",
        help="search validation accuracy against trainable parameters (two objectives, the "
        f"front retrained); study name NAME-pareto, --retrain-top {PARETO_RETRAIN_TOP} points",
    )
    flag("--no-retrain", action="store_true", help="skip retraining the best trials afterwards")
    flag(
        "--retrain-top",
        type=positive_int,
        metavar="K",
        help=f"retrain the K best distinct configurations; default {d.retrain_top}",
    )
    flag(
        "--seeds",
        type=positive_int,
        metavar="S",
        help=f"seeds per retrained configuration or reproduced baseline; default {d.seeds}",
    )
    flag(
        "--artifact-dir",
        metavar="DIR",
        help="saved models and artifacts; default: artifacts/ "
        "beside a SQLite file, else ./artifacts",
    )
    flag(
        "--baselines",
        nargs="+",
        metavar="ID",
        help="with --study *-baselines: reproduce only these documented ids; default all",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> StudyConfig:
    """The preset or study file with the user's flags applied, validated."""
    preset = load(args.study)
    if args.baselines and preset.mode != "baselines":
        raise UsageError(
            f"--baselines applies to --study {preset.dataset}-baselines, not --study {args.study}"
        )
    if args.data_dir and preset.train is not None:
        raise UsageError(
            f"--data-dir applies to the built-in datasets; {args.study} names its own data "
            "in [data] train"
        )
    pareto = args.pareto and not preset.pareto  # the flag turns a one-objective study Pareto
    try:
        return preset.with_overrides(
            storage=args.storage or default_storage(),
            pareto=True if pareto else None,
            study_name=args.study_name or (f"{preset.study_name}-pareto" if pareto else None),
            n_trials=args.n_trials,
            timeout=args.timeout,
            sampler=args.sampler,
            pruner=args.pruner,
            max_epochs=args.max_epochs,
            patience=args.patience,
            limit_train=args.limit_train,
            data_dir=(args.data_dir or default_data_dir()) if preset.train is None else None,
            seed=args.seed,
            workers=args.workers,
            heartbeat=args.heartbeat,
            trials_per_process=args.trials_per_process,
            retrain=False if args.no_retrain else None,
            warm_start=False if args.no_warm_start else None,
            retrain_top=args.retrain_top or (PARETO_RETRAIN_TOP if pareto else None),
            seeds=args.seeds,
            artifact_dir=args.artifact_dir,
            baseline_ids=tuple(args.baselines) if args.baselines else None,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def require_tensorflow() -> None:
    """UsageError naming the install when TensorFlow is missing: it comes with an extra (`cpu`,
    in `dev`, or `gpu`), so a bare `pip install -e .` has none. Found without importing it."""
    if importlib.util.find_spec("tensorflow") is None:
        raise UsageError(
            "TensorFlow is not installed; install the project with an extra: "
            "pip install -e '.[cpu]' (or '.[gpu]' on a machine with NVIDIA GPUs)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    storage = args.storage or default_storage()
    try:
        require_tensorflow()
        return run(resolve_config(args))
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {mask_secrets(str(exc), storage)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Nothing half-written is kept (models are renamed into place whole; SQLite commits
        # whole transactions), so the same command resumes once there is room.
        print(
            f"{PROG}: error: no space left on the device writing {exc.filename or 'a file'}; "
            "free some space (or give --artifact-dir on another disk), then run the same "
            "command to resume: finished trials and stored runs are kept",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt as exc:
        stopped = isinstance(exc, Terminated)
        print(
            f"\n{PROG}: {'stopped by SIGTERM' if stopped else 'interrupted'}; finished trials "
            "are stored, run the same command to resume",
            file=sys.stderr,
        )
        return 143 if stopped else 130


if __name__ == "__main__":
    stop_on_sigterm()  # here, not in main(): a process that calls main() keeps its own handler
    sys.exit(main())
