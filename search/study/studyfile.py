"""Study files: a study described in TOML, read into a StudyConfig.

The presets (`--study fashion`, `mnist`, `fashion-baselines`, `mnist-baselines`) are study files
shipped in search/study/presets/. A user's file names at least its data; every other key has
the default of the StudyConfig and SearchSpace fields. Paths are relative to the file's folder.
Unknown sections or keys, wrong types and out-of-range values are refused with the key's name
and what would be accepted (a UsageError: one line, exit status 2).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from search.errors import UsageError
from search.study.config import PARETO_RETRAIN_TOP, SearchSpace, StudyConfig

PRESET_DIR = Path(__file__).with_name("presets")

_NUMBER = (int, float)
# section -> key -> (StudyConfig field, accepted types, what to say when the type is wrong)
_KEYS: dict[str, dict[str, tuple[str, tuple[type, ...], str]]] = {
    "study": {
        "name": ("study_name", (str,), "a string"),
        "task": ("task", (str,), '"classification" or "regression"'),
        "mode": ("mode", (str,), '"search" or "baselines"'),
        "seed": ("seed", (int,), "a whole number"),
        "pareto": ("pareto", (bool,), "true or false"),
    },
    "data": {
        "builtin": ("dataset", (str,), '"fashion" or "mnist"'),
        "train": ("train", (str,), "a path"),
        "test": ("test", (str,), "a path"),
        "target": ("target", (str,), "a column name"),
        "val_fraction": ("val_fraction", _NUMBER, "a number in (0, 1)"),
        "split_seed": ("split_seed", (int,), "a whole number"),
        "limit_train": ("limit_train", (int,), "a whole number of examples"),
    },
    "search": {
        "n_trials": ("n_trials", (int,), "a positive whole number"),
        "timeout": ("timeout", _NUMBER, "seconds (a positive number)"),
        "max_epochs": ("max_epochs", (int,), "a positive whole number"),
        "patience": ("patience", (int,), "a positive whole number"),
        "sampler": ("sampler", (str,), '"tpe" or "random"'),
        "pruner": ("pruner", (str,), "a pruner name"),
        "workers": ("workers", (int,), "a positive whole number"),
        "warm_start": ("warm_start", (bool,), "true or false"),
    },
    "retrain": {
        "enabled": ("retrain", (bool,), "true or false"),
        "top": ("retrain_top", (int,), "a positive whole number"),
        "seeds": ("seeds", (int,), "a positive whole number"),
        "baselines": ("baseline_ids", (list,), "a list of documented baseline ids"),
    },
}
_SPACE_FIELDS = {f.name: f for f in dataclasses.fields(SearchSpace)}


def _presets() -> dict[str, StudyConfig]:
    return {path.stem: read(path, preset=path.stem) for path in sorted(PRESET_DIR.glob("*.toml"))}


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.toml"))


def is_study_file(study: str) -> bool:
    """A path (it names a .toml file) rather than a preset name."""
    return study.endswith(".toml") or "/" in study or "\\" in study


def load(study: str) -> StudyConfig:
    """The StudyConfig of a preset name or of a study file's path."""
    if is_study_file(study):
        return read(Path(study).expanduser())
    if study not in PRESETS:
        raise UsageError(
            f"unknown study {study!r}; use a preset ({', '.join(preset_names())}) or the path "
            "of a study file (README, Study files)"
        )
    return PRESETS[study]


def read(path: Path, preset: str | None = None) -> StudyConfig:
    """Parse and check one study file."""
    where = f"study file {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where} does not exist; check the path given to --study") from None
    except OSError as exc:
        raise UsageError(f"{where} cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where} is not valid TOML ({exc})") from None
    allowed = (*_KEYS, "space")
    for section, body in document.items():
        if section not in allowed:
            raise UsageError(
                f"{where}: unknown section [{section}]; use {', '.join(f'[{s}]' for s in allowed)}"
            )
        if not isinstance(body, dict):
            raise UsageError(f"{where}: {section} must be a [{section}] table of keys")
    values: dict[str, Any] = {}
    for section, keys in _KEYS.items():
        for key, value in document.get(section, {}).items():
            if key not in keys:
                raise UsageError(
                    f"{where}: unknown key {key!r} in [{section}]; use {', '.join(keys)}"
                )
            name, types, expected = keys[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise UsageError(f"{where}: [{section}] {key} must be {expected}, got {value!r}")
            values[name] = value
    data = document.get("data", {})
    if ("builtin" in data) == ("train" in data):
        raise UsageError(f'{where}: [data] needs either train = "file" or builtin = "fashion"')
    if "train" in data:
        folder = path.parent
        for key in ("train", "test"):
            if key in values:
                values[key] = str((folder / values[key]).expanduser().resolve())
        values["dataset"] = Path(values["train"]).name
        is_table = Path(values["train"]).suffix.lower() in (".csv", ".parquet", ".pq")
        if is_table and "target" not in values:
            raise UsageError(
                f"{where}: [data] target is missing; name the column to predict in the CSV or "
                "Parquet file"
            )
        if not is_table and "target" in values:
            raise UsageError(f"{where}: [data] target applies to CSV and Parquet files only")
    if "baseline_ids" in values:
        values["baseline_ids"] = tuple(str(item) for item in values["baseline_ids"])
    space = _space(document.get("space", {}), where)
    if values.get("task") == "regression" and "label_smoothing" not in document.get("space", {}):
        space = dataclasses.replace(space, label_smoothing=(0.0, 0.0))  # classification only
    values.setdefault("study_name", path.stem if preset is None else preset)
    if values.get("pareto"):
        values.setdefault("retrain_top", PARETO_RETRAIN_TOP)
    try:
        return StudyConfig(preset=preset or str(path), space=space, **values)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _space(body: dict[str, Any], where: str) -> SearchSpace:
    """[space]: ranges as [low, high], choices as lists; unspecified knobs keep the default."""
    defaults = SearchSpace()
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key not in _SPACE_FIELDS:
            raise UsageError(
                f"{where}: unknown key {key!r} in [space]; use {', '.join(_SPACE_FIELDS)}"
            )
        default = getattr(defaults, key)
        if not isinstance(value, list) or not value:
            raise UsageError(f"{where}: [space] {key} must be a list, e.g. {list(default)}")
        kind = type(default[0])
        ok = all(
            isinstance(item, kind) if kind is not float else isinstance(item, _NUMBER)
            for item in value
        ) and not (kind is not bool and any(isinstance(item, bool) for item in value))
        if not ok or (kind is float and not all(math.isfinite(item) for item in value)):
            raise UsageError(
                f"{where}: [space] {key} must hold {kind.__name__} values like "
                f"{list(default)}, got {value}"
            )
        is_range = key in (
            "n_layers",
            "n_units",
            "dropout",
            "learning_rate",
            "weight_decay",
            "label_smoothing",
        )
        if is_range and len(value) != 2:
            raise UsageError(f"{where}: [space] {key} is a range [low, high], got {value}")
        values[key] = tuple(float(v) for v in value) if kind is float else tuple(value)
    try:
        return SearchSpace(**values)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


# The shipped study files, read once: `--study fashion` and the other preset names.
PRESETS: dict[str, StudyConfig] = _presets()
