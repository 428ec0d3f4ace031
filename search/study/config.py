"""Study configuration: the frozen config a run resolves to (from a study file and the flags).

The presets are study files (search/study/presets/, read by `studyfile`)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from models.params import ACTIVATIONS, LR_SCHEDULES, OPTIMIZERS
from models.task import TASKS as TASK_SPECS
from models.task import Task
from search.data.source import BUILTIN, DataSource

DEFAULT_STORAGE = "sqlite:///studies.db"
DEFAULT_HEARTBEAT = 10  # seconds between a running trial's heartbeats (search.status reads it too)
# Batch size of every evaluation pass (validation in the search and retrain, the test set):
# evaluation needs no small batches, and fewer, larger ones are faster on the CPU.
EVAL_BATCH = 1024
# The search space's version, recorded with every study: trials of two versions sample
# different parameters, so a study is only ever continued with the version it was made with.
SPACE_VERSION = 2
# Points of a Pareto study's validation front retrained (when --retrain-top is not given).
PARETO_RETRAIN_TOP = 4
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "sha", "patient", "none")
TASKS = tuple(TASK_SPECS)  # "classification", "regression"


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the dense-network search space; parameter names live in search/study/space.py.

    Version 2 (SPACE_VERSION) added batch normalisation, weight decay, input standardisation,
    the learning-rate schedule and label smoothing, and widened the unit range: the knobs that
    let wide networks generalise.
    """

    n_layers: tuple[int, int] = (1, 3)
    n_units: tuple[int, int] = (32, 2048)  # sampled on a log scale
    dropout: tuple[float, float] = (0.0, 0.6)
    activations: tuple[str, ...] = ("relu", "gelu", "swish", "elu", "leaky_relu", "tanh")
    learning_rate: tuple[float, float] = (1e-4, 1e-2)  # sampled on a log scale
    optimizers: tuple[str, ...] = OPTIMIZERS
    batch_sizes: tuple[int, ...] = (64, 128, 256, 512)
    batch_norm: tuple[bool, ...] = (False, True)
    weight_decay: tuple[float, float] = (1e-6, 1e-1)  # log scale; decoupled, times the lr
    standardize: tuple[bool, ...] = (False, True)
    lr_schedules: tuple[str, ...] = LR_SCHEDULES
    label_smoothing: tuple[float, float] = (0.0, 0.2)

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_units", "dropout", "learning_rate", "weight_decay"):
            low, high = getattr(self, name)
            if not low <= high:
                raise ValueError(f"search space {name}: low {low} is above high {high}")
        if self.n_layers[0] < 1 or self.n_units[0] < 1 or self.learning_rate[0] <= 0:
            raise ValueError("search space: layers, units and learning rate must be positive")
        if self.weight_decay[0] <= 0:
            raise ValueError("search space weight_decay: the low end must be positive (log scale)")
        if not 0.0 <= self.dropout[0] <= self.dropout[1] < 1.0:
            raise ValueError(f"search space dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.label_smoothing[0] <= self.label_smoothing[1] < 1.0:
            raise ValueError(
                f"search space label_smoothing must lie in [0, 1), got {self.label_smoothing}"
            )
        for name, allowed in (
            ("activations", ACTIVATIONS),
            ("optimizers", OPTIMIZERS),
            ("lr_schedules", LR_SCHEDULES),
        ):
            unknown = set(getattr(self, name)) - set(allowed)
            if unknown or not getattr(self, name):
                raise ValueError(f"search space {name}: use values from {allowed}")


# The first trial of a new search (unless --no-warm-start): what a practitioner would try first
# for a dense network (two wide layers, standardised inputs, batch normalisation, dropout,
# AdamW-style decay, cosine schedule, label smoothing); the search then tries to beat it.
WARM_START = {
    "n_layers": 2,
    "n_units_l0": 1024,
    "dropout_l0": 0.3,
    "n_units_l1": 1024,
    "dropout_l1": 0.3,
    "activation": "relu",
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "batch_size": 128,
    "batch_norm": True,
    "weight_decay": 4e-3,
    "standardize": True,
    "lr_schedule": "cosine",
    "label_smoothing": 0.1,
}


@dataclass(frozen=True)
class StudyConfig:
    """Everything one run of `search.run` needs, resolved from a preset and the CLI flags."""

    preset: str  # the preset's name, or the study file's path
    dataset: str  # "fashion" or "mnist" (built-in), else the name of the user's train file
    study_name: str
    task: str = "classification"
    # The user's data (a study file's [data]): absolute paths; None for a built-in dataset.
    train: str | None = None
    test: str | None = None
    target: str | None = None
    storage: str = DEFAULT_STORAGE
    n_trials: int = 100  # study-wide target of finished (complete + pruned) trials
    timeout: float | None = 1080.0  # seconds after which the search ends (objective.py)
    sampler: str = "tpe"
    pruner: str = "hyperband"
    max_epochs: int = 20
    patience: int = 4  # epochs without val_accuracy gain before a trial stops by itself
    limit_train: int | None = None
    data_dir: str | None = None
    seed: int = 0
    split_seed: int = 0  # the validation split is fixed across runs and seeds
    val_fraction: float = 0.1
    # Worker processes on this machine sharing the storage (and then the retrain's runs), the
    # cores split between them: on a 2-core CPU two one-thread processes train more epochs a
    # second than one two-thread process (README, Defaults).
    workers: int = 2
    heartbeat: int = DEFAULT_HEARTBEAT
    # A worker process hands over to a fresh one after this many trials: TensorFlow keeps
    # about 5 MB per trained model however it is cleared (benchmarks/RESULTS.md, bench_memory).
    trials_per_process: int = 40
    retrain: bool = True
    retrain_top: int = 2  # distinct best configurations retrained after the search
    seeds: int = 3  # seeds per retrained configuration (and per reproduced baseline)
    artifact_dir: str | None = None  # default: artifacts/ beside a SQLite file, else ./artifacts
    mode: str = "search"  # "search", or "baselines": reproduce the documented baselines
    baseline_ids: tuple[str, ...] = ()  # baselines mode: only these ids (default: all)
    warm_start: bool = True  # enqueue WARM_START as the first trial of a new study
    space: SearchSpace = field(default_factory=SearchSpace)
    space_version: int = SPACE_VERSION
    # A Pareto search: validation figure against trainable parameters (search/study/pareto.py)
    pareto: bool = False

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"--n-trials must be a positive integer, got {self.n_trials}")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.max_epochs < 1:
            raise ValueError(f"--max-epochs must be a positive integer, got {self.max_epochs}")
        if self.patience < 1:
            raise ValueError(f"--patience must be a positive integer, got {self.patience}")
        if self.limit_train is not None and self.limit_train < 50:
            raise ValueError(
                f"--limit-train must be at least 50 examples (10% go to validation, which "
                f"needs 5), got {self.limit_train}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; use one of {SAMPLERS}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {self.pruner!r}; use one of {PRUNERS}")
        if self.seed < 0:
            raise ValueError(f"--seed must be zero or positive, got {self.seed}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.workers < 1:
            raise ValueError(f"--workers must be a positive integer, got {self.workers}")
        if self.heartbeat < 1:
            raise ValueError(
                f"--heartbeat must be a positive number of seconds, got {self.heartbeat}"
            )
        if self.trials_per_process < 1:
            raise ValueError(
                f"--trials-per-process must be a positive integer, got {self.trials_per_process}"
            )
        if self.retrain_top < 1:
            raise ValueError(f"--retrain-top must be a positive integer, got {self.retrain_top}")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, got {self.seeds}")
        if self.mode not in ("search", "baselines"):
            raise ValueError(f"unknown mode {self.mode!r}")
        if not self.study_name.strip():
            raise ValueError("--study-name must not be empty")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; use one of {TASKS}")
        if self.train is None and self.dataset not in BUILTIN:
            raise ValueError(f"unknown dataset {self.dataset!r}; use one of {BUILTIN}")
        if self.pareto and self.mode != "search":
            raise ValueError("--pareto applies to a search, not to reproducing the baselines")
        if self.train is None and self.task != "classification":
            raise ValueError(f"{self.dataset} is a classification dataset, not {self.task}")

    @property
    def task_spec(self) -> Task:
        """The task's figure and direction (models.task)."""
        return TASK_SPECS[self.task]

    @property
    def directions(self) -> list[str]:
        """The study's directions: the figure's, and with --pareto fewer parameters."""
        figure = self.task_spec.direction
        return [figure, "minimize"] if self.pareto else [figure]

    @property
    def metric_names(self) -> list[str]:
        """What optuna-dashboard calls the values."""
        return [self.task_spec.monitor, *(["n_params"] if self.pareto else [])]

    def warm_start_params(self) -> dict[str, Any]:
        """WARM_START for this task: regression has no label smoothing."""
        if self.task == "regression":
            return {**WARM_START, "label_smoothing": 0.0}
        return dict(WARM_START)

    def warm_starts(self) -> list[dict[str, Any]]:
        """The trials a new study starts with. A Pareto search also starts at the other end of
        the front: the same recipe in the smallest network the space allows (one layer of the
        fewest units, the least dropout, no batch normalisation, whose scale and shift count as
        parameters and which did not pay in bench_ablation), so the front's small end is
        measured from the start rather than left to the sampler's luck on a log-scale width."""
        wide = self.warm_start_params()
        if not self.pareto:
            return [wide]
        small = {k: v for k, v in wide.items() if not k.endswith("_l1")}
        small.update(
            n_layers=1,
            n_units_l0=self.space.n_units[0],
            dropout_l0=self.space.dropout[0],
            batch_norm=False,
        )
        return [wide, small]

    def data_source(self) -> DataSource:
        """Where this study's data comes from (built-in, or the study file's files)."""
        if self.train is None:
            return DataSource(builtin=self.dataset, data_dir=self.data_dir)
        return DataSource(train=self.train, test=self.test, target=self.target)

    def with_overrides(self, **overrides: Any) -> StudyConfig:
        """A copy with every override that is not None applied (None means "keep the preset")."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the storage URL is left out (it may hold a password)."""
        data = asdict(self)
        data.pop("storage")
        return json.loads(json.dumps(data))  # tuples -> lists, as stored attributes read back


def default_storage() -> str:
    """The storage URL when --storage is not given: env SEARCH_STORAGE, else a local SQLite file."""
    return os.environ.get("SEARCH_STORAGE") or DEFAULT_STORAGE


def default_data_dir() -> str | None:
    return os.environ.get("SEARCH_DATA_DIR") or None
