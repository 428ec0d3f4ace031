"""A study's health: its trials by state, the running trials' heartbeats, and reaping stale ones.

A running trial is stale once its last beat (read from Optuna's own `trial_heartbeats` table)
is older than `storage.rdb.grace_period(heartbeat)`, the threshold the workers themselves apply.
`status` only reads; `reap` calls Optuna's `fail_stale_trials`, so the stale trials become FAIL
and the retry callback `storage.rdb.open_storage` installs queues their configuration again.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from models.task import of_direction
from search.study.values import best_trial, figure, is_pareto
from storage.proxy_client import is_proxy
from storage.rdb import grace_period, open_storage
from storage.urls import mask_url

STATES = ("COMPLETE", "PRUNED", "RUNNING", "FAIL", "WAITING")


def status(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    heartbeat: int,
    *,
    url: str | None = None,
) -> dict[str, Any]:
    """A JSON-ready summary of `study`, which must be loaded from `storage`.

    `heartbeat` is the workers' heartbeat interval in seconds: it sets the stale threshold.
    `url` is the storage URL to show (masked); by default the storage's own.
    """
    trials = study.get_trials(deepcopy=False)
    counts = {name: sum(t.state == TrialState[name] for t in trials) for name in STATES}
    threshold = grace_period(heartbeat)
    # Behind a storage proxy, the beats are in the database only the proxy reaches.
    beats_known = not is_proxy(storage)
    now, beats = (
        _heartbeats(storage, storage.get_study_id_from_name(study.study_name))
        if beats_known
        else (None, {})
    )
    running = []
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        beat = beats.get(trial.number)
        age = None if beat is None else (now - beat).total_seconds()
        running.append(
            {
                "number": trial.number,
                "worker": trial.user_attrs.get("worker"),
                "started": _iso(trial.datetime_start),
                "last_heartbeat": _iso(beat),
                "heartbeat_age_seconds": age,
                # Optuna never fails a trial without a beat: its run had heartbeats off.
                "stale": age is not None and age > threshold,
            }
        )
    return {
        "study": study.study_name,
        "storage": mask_url(url if url is not None else storage.url),
        "heartbeats_known": beats_known,
        "directions": [d.name.lower() for d in study.directions],
        "counts": counts,
        "finished": counts["COMPLETE"] + counts["PRUNED"],
        "total": len(trials),
        "heartbeat_seconds": heartbeat,
        "grace_period_seconds": threshold,
        "database_time": _iso(now),
        "running": running,
        "best": _best(study),
    }


def reap(url: str, study_name: str, heartbeat: int) -> list[dict[str, Any]]:
    """Fail the study's stale running trials as a worker would; one entry per trial failed.

    Each entry holds the failed trial's `number` and the number of the WAITING trial that
    retries its configuration (`retry`), or None when the trial used up its retries.
    """
    with warnings.catch_warnings():
        # Heartbeats and fail_stale_trials are "experimental" in Optuna's terms: noise here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _reap(open_storage(url, heartbeat_interval=heartbeat), study_name)


def _reap(storage: optuna.storages.RDBStorage, study_name: str) -> list[dict[str, Any]]:
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        failed: list[int] = []
        retry = storage.heartbeat_stale_trial_callback

        # Optuna calls this callback exactly for the trials its own call failed (not those
        # another worker failed a moment earlier), so the list is what this command did.
        def record_then_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            failed.append(trial.number)
            if retry is not None:
                retry(study, trial)

        storage.heartbeat_stale_trial_callback = record_then_retry
        optuna.storages.fail_stale_trials(study)
        # Optuna's retry callback appends the failed trial's number to the retry's history.
        retries = {
            t.system_attrs["retry_history"][-1]: t.number
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if t.system_attrs.get("retry_history")
        }
        return [{"number": n, "retry": retries.get(n)} for n in failed]
    finally:
        storage.engine.dispose()


def format_status(summary: dict[str, Any]) -> list[str]:
    """The summary of `status` as lines for a terminal."""
    counts = summary["counts"]
    lines = [
        f"study {summary['study']!r} in {summary['storage']}",
        "trials: "
        + ", ".join(f"{counts[s]} {s.lower()}" for s in STATES)
        + f"; {summary['finished']} finished (complete + pruned) of {summary['total']}",
    ]
    if summary["running"]:
        clock = summary["database_time"]
        lines.append(
            f"running (heartbeat {summary['heartbeat_seconds']} s: stale after "
            f"{summary['grace_period_seconds']} s without a beat"
            + (f"; database clock {clock}):" if clock else "):")
        )
    for run in summary["running"]:
        worker = run["worker"] or "worker unknown"
        if not summary["heartbeats_known"]:
            beat = "heartbeat checked by the proxy (the database URL shows its age)"
        elif run["last_heartbeat"] is None:
            beat = "no heartbeat (run without heartbeats: never failed as stale)"
        else:
            age = run["heartbeat_age_seconds"]
            beat = f"last heartbeat {run['last_heartbeat']} ({age:.0f} s ago)"
            beat += ", STALE" if run["stale"] else ", alive"
        lines.append(
            f"  trial {run['number']}: {worker}, started {run['started'] or 'unknown'}, {beat}"
        )
    best = summary["best"]
    if best is None:
        lines.append("best: no complete trial yet")
    else:
        size = "" if best["n_params"] is None else f", {best['n_params']:,} params"
        lines.append(
            f"best: trial {best['number']}, value {best['value']:.6g}{size}, "
            f"params {best['params']}"
        )
        if best.get("front") is not None:
            lines.append(
                f"validation front ({best['figure']} against parameters): {best['front']} trials"
            )
    return lines


def _heartbeats(
    storage: optuna.storages.RDBStorage, study_id: int
) -> tuple[dt.datetime, dict[int, dt.datetime]]:
    """The database's clock and the last beat of each running trial, by trial number.

    Ages are measured on the database's clock, as Optuna's stale check does: the beats were
    stamped by it, and a worker's or this machine's clock may differ.
    """
    with storage.engine.connect() as connection:
        # Optuna's tables, read by reflection rather than through its private ORM models.
        tables = sqlalchemy.MetaData()
        tables.reflect(connection, only=("trials", "trial_heartbeats"))
        trials, beats_table = tables.tables["trials"], tables.tables["trial_heartbeats"]
        query = (
            sqlalchemy.select(trials.c.number, beats_table.c.heartbeat)
            .join(beats_table, beats_table.c.trial_id == trials.c.trial_id)
            .where(trials.c.study_id == study_id, trials.c.state == TrialState.RUNNING.name)
        )
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        beats = {number: beat for number, beat in connection.execute(query)}
    # PostgreSQL answers with a time zone, the heartbeat column has none (as in Optuna).
    return _naive(now), {n: _naive(b) for n, b in beats.items()}


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=None)


def _best(study: optuna.Study) -> dict[str, Any] | None:
    """The trial with the best validation figure (in a Pareto study: the most accurate end of
    the front, with the front's size)."""
    best = best_trial(study)
    if best is None:  # no complete trial
        return None
    return {
        "number": best.number,
        "value": figure(best),
        "front": len(study.best_trials) if is_pareto(study) else None,
        "figure": of_direction(study.directions[0].name).label,  # accuracy, or RMSE
        "params": best.params,
        "n_params": best.user_attrs.get("n_params"),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(sep=" ", timespec="seconds")
