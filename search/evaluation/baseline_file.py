"""Reading baselines.toml: every [[baseline]] table becomes a checked `Baseline`.

A typo in the file (an unknown key, dataset or activation, one dropout rate too few) stops the
import with the file, the entry's id and the problem instead of surfacing in a report hours
later.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from search.evaluation.baseline import FIGURES, NOT_STATED, Baseline, Figure

# --- reading baselines.toml ----------------------------------------------------------------------
# The loader checks what TOML can get wrong (unknown or missing keys, a value of the wrong type)
# and converts arrays to tuples; what the values mean is checked by Baseline.__post_init__.

DATA_FILE = "baselines.toml"
_PACKAGE = "search.evaluation"

# Keys every [[baseline]] table must give.
_REQUIRED_KEYS = ("id", "dataset", "source", "kind", "units", "dropouts", "batch_size")
# Every other key may be left out: the source does not state it (see the file's header). The
# value a left-out key stands for:
_LEFT_OUT: dict[str, Any] = {
    "activation": None,
    "reproduce_activation": NOT_STATED,
    "optimizer": NOT_STATED,
    "epochs": None,
    "patience": None,
    "documented": {},
    "documented_epochs": None,
    "n_params": None,
    "assumptions": (),
    "note": "",
}


# A converter takes (where, key, value): `where` and `key` name the entry and key in its errors.
_Converter = Callable[[str, str, object], Any]


def _string(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _integer(where: str, key: str, value: object) -> int:
    # bool is an int in Python; `epochs = true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _number(where: str, key: str, value: object) -> float:
    # TOML reads `0` as an integer; a rate or a figure written so is still meant as a float.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _array(where: str, key: str, value: object, item: _Converter) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} must be an array, got {value!r}")
    return tuple(item(where, f"{key}[{i}]", element) for i, element in enumerate(value))


def _figure(where: str, key: str, value: object) -> Figure:
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError(f"{where}: {key} as a range is [low, high], got {value!r}")
        low, high = _array(where, key, value, _number)
        return (low, high)
    return _number(where, key, value)


def _figures(where: str, key: str, value: object) -> dict[str, Figure]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} must be a table of figures, got {value!r}")
    # An unknown name is kept so that __post_init__ names it; _entry adds the figures left out.
    return {name: _figure(where, f"{key}.{name}", figure) for name, figure in value.items()}


# Every key a [[baseline]] table may hold (exactly Baseline's fields), with its TOML type check.
_CONVERTERS: dict[str, _Converter] = {
    "id": _string,
    "dataset": _string,
    "source": _string,
    "kind": _string,
    "units": lambda where, key, value: _array(where, key, value, _integer),
    "dropouts": lambda where, key, value: _array(where, key, value, _number),
    "activation": _string,
    "reproduce_activation": _string,
    "optimizer": _string,
    "batch_size": _integer,
    "epochs": _integer,
    "patience": _integer,
    "documented": _figures,
    "documented_epochs": _integer,
    "n_params": _integer,
    "assumptions": lambda where, key, value: _array(where, key, value, _string),
    "note": _string,
}


def _entry(table: object, position: int) -> Baseline:
    """One [[baseline]] table (the `position`-th of the file) as a checked Baseline."""
    if not isinstance(table, dict):
        raise ValueError(f"baseline #{position}: not a table")
    baseline_id = table.get("id")
    where = f"baseline {baseline_id}" if isinstance(baseline_id, str) else f"baseline #{position}"
    for key in table:
        # Refused, not ignored: a misspelt key would otherwise silently read as "not stated".
        if key not in _CONVERTERS:
            close = difflib.get_close_matches(key, _CONVERTERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}{hint}")
    missing = [key for key in _REQUIRED_KEYS if key not in table]
    if missing:
        raise ValueError(f"{where}: missing key {', '.join(map(repr, missing))}")
    values = {key: _LEFT_OUT[key] for key in _LEFT_OUT if key not in table}
    values.update({key: _CONVERTERS[key](where, key, value) for key, value in table.items()})
    # A figure left out is not stated: None, so every entry has all FIGURES keys.
    values["documented"] = {**dict.fromkeys(FIGURES), **values["documented"]}
    return Baseline(**values)


def from_document(document: Mapping[str, object], source: str = "<data>") -> tuple[Baseline, ...]:
    """The entries of a parsed baselines document (`tomllib`'s dict), checked, in its order.

    ValueError, prefixed with `source`, naming the entry (its id, else its position) and the
    problem.
    """
    try:
        unknown = [key for key in document if key != "baseline"]
        if unknown:
            raise ValueError(
                f"unknown top-level key {', '.join(map(repr, unknown))}; the file holds only "
                "[[baseline]] tables"
            )
        tables = document.get("baseline")
        if not isinstance(tables, list) or not tables:
            raise ValueError("no entries: write each one as a [[baseline]] table")
        entries = tuple(_entry(table, position) for position, table in enumerate(tables, 1))
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"baseline {entry.id}: the id is used twice")
            seen.add(entry.id)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return entries


def loads(text: str, source: str = "<string>") -> tuple[Baseline, ...]:
    """The entries of a baselines TOML text, checked, in file order (see `from_document`)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    return from_document(document, source)


def load() -> tuple[Baseline, ...]:
    """Every entry of the packaged baselines.toml, checked, in file order."""
    # importlib.resources, not a path beside __file__: the file is package data and also has to be
    # found when the package is installed from a wheel or zip.
    text = resources.files(_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return loads(text, source=f"{_PACKAGE.replace('.', '/')}/{DATA_FILE}")
