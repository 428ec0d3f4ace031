"""`python -m search.status --study NAME`: what a study's trials are doing, and reaping stale ones.

Shows the trials by state, every running trial with its worker and the age of its last heartbeat
(read from Optuna's own `trial_heartbeats` table), the best trial so far and the storage URL
without its password. A running trial is stale once its last beat is older than
`storage.rdb.grace_period(heartbeat)`, the threshold the search workers themselves apply.

Without --reap the storage is opened by `storage.readonly.open_read_only` (SQLite's `mode=ro`;
read-only transactions on PostgreSQL and MySQL), so looking never creates a database or a table
and never writes.
--reap then opens it as a worker does and calls Optuna's `fail_stale_trials`: the stale trials
become FAIL and the retry callback that `storage.rdb.open_storage` installs (Optuna's
RetryFailedTrialCallback family) queues their configuration again as a WAITING trial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from search.cli import Parser, positive_int
from search.errors import UsageError
from storage.urls import mask_secrets, mask_url

if TYPE_CHECKING:
    import optuna

PROG = "search.status"
DEFAULT_HEARTBEAT = 10  # seconds; the default heartbeat interval of the search workers
STATES = ("COMPLETE", "PRUNED", "RUNNING", "FAIL", "WAITING")


def status(
    study: optuna.Study,
    storage: optuna.storages.RDBStorage,
    heartbeat: int,
    *,
    url: str | None = None,
) -> dict[str, Any]:
    """A JSON-ready summary of `study`, which must be loaded from `storage`.

    `heartbeat` is the workers' heartbeat interval in seconds: it sets the stale threshold.
    `url` is the storage URL to show (masked); by default the storage's own.
    """
    from optuna.trial import TrialState

    from storage.rdb import grace_period

    trials = study.get_trials(deepcopy=False)
    counts = {name: sum(t.state == TrialState[name] for t in trials) for name in STATES}
    threshold = grace_period(heartbeat)
    now, beats = _heartbeats(storage, storage.get_study_id_from_name(study.study_name))
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
    import optuna

    from storage.rdb import open_storage

    with warnings.catch_warnings():
        # Heartbeats and fail_stale_trials are "experimental" in Optuna's terms: noise here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _reap(open_storage(url, heartbeat_interval=heartbeat), study_name)


def _reap(storage: optuna.storages.RDBStorage, study_name: str) -> list[dict[str, Any]]:
    import optuna
    from optuna.trial import TrialState

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
        lines.append(
            f"running (heartbeat {summary['heartbeat_seconds']} s: stale after "
            f"{summary['grace_period_seconds']} s without a beat; "
            f"database clock {summary['database_time']}):"
        )
    for run in summary["running"]:
        worker = run["worker"] or "worker unknown"
        if run["last_heartbeat"] is None:
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
    return lines


def _heartbeats(
    storage: optuna.storages.RDBStorage, study_id: int
) -> tuple[dt.datetime, dict[int, dt.datetime]]:
    """The database's clock and the last beat of each running trial, by trial number.

    Ages are measured on the database's clock, as Optuna's stale check does: the beats were
    stamped by it, and a worker's or this machine's clock may differ.
    """
    import sqlalchemy
    from optuna.storages._rdb.models import TrialHeartbeatModel, TrialModel
    from optuna.trial import TrialState

    query = (
        sqlalchemy.select(TrialModel.number, TrialHeartbeatModel.heartbeat)
        .join(TrialHeartbeatModel, TrialHeartbeatModel.trial_id == TrialModel.trial_id)
        .where(TrialModel.study_id == study_id, TrialModel.state == TrialState.RUNNING)
    )
    with storage.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        beats = {number: beat for number, beat in connection.execute(query)}
    # PostgreSQL answers with a time zone, the heartbeat column has none (as in Optuna).
    return _naive(now), {n: _naive(b) for n, b in beats.items()}


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=None)


def _best(study: optuna.Study) -> dict[str, Any] | None:
    if len(study.directions) != 1:
        return None  # a multi-objective study has a front, not one best trial
    try:
        best = study.best_trial
    except ValueError:  # no complete trial
        return None
    return {
        "number": best.number,
        "value": best.value,
        "params": best.params,
        "n_params": best.user_attrs.get("n_params"),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(sep=" ", timespec="seconds")


def _seconds(text: str) -> int:
    return positive_int(text, unit=" of seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"python -m {PROG}",
        description="Show a study's trials by state, its running trials' heartbeats and its "
        "best trial; with --reap, fail stale running trials so their configuration is retried.",
    )
    flag = parser.add_argument
    flag("--study", required=True, metavar="NAME", help="name of the study in the storage")
    parser.add_storage_flag()
    flag(
        "--heartbeat",
        type=_seconds,
        default=DEFAULT_HEARTBEAT,
        metavar="SECONDS",
        help="the workers' heartbeat interval; a trial is stale after 2 x SECONDS + 10 s "
        f"without a beat; default {DEFAULT_HEARTBEAT}",
    )
    flag(
        "--reap",
        action="store_true",
        help="mark stale running trials FAIL (their configuration is queued again); "
        "without it nothing is written",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from search.config import default_storage

    args = build_parser().parse_args(argv)
    url = args.storage or default_storage()
    # Imported after the flags are parsed, so --help and a usage error need not load Optuna.
    import optuna

    from storage.rdb import first_line
    from storage.readonly import find_study_id, open_read_only

    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_read_only(url)
        try:
            find_study_id(storage, args.study, url)
            study = optuna.load_study(study_name=args.study, storage=storage)
            summary = status(study, storage, args.heartbeat, url=url)
        finally:
            storage.engine.dispose()
        for line in format_status(summary):
            print(line)
        if args.reap:
            _print_reaped(reap(url, args.study, args.heartbeat))
        elif any(run["stale"] for run in summary["running"]):
            print("hint: --reap fails the stale trials so that their configurations run again")
    except UsageError as exc:
        print(f"{PROG}: error: {mask_secrets(str(exc), url)}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # the database went away between two queries
        print(
            f"{PROG}: error: database {mask_url(url)} failed: {first_line(exc, url)}",
            file=sys.stderr,
        )
        return 2
    return 0


def _print_reaped(reaped: list[dict[str, Any]]) -> None:
    if not reaped:
        print("reap: no stale running trial; nothing changed")
    for entry in reaped:
        retry = (
            f"its configuration is queued again as trial {entry['retry']}"
            if entry["retry"] is not None
            else "no retry queued (its configuration used up its retries)"
        )
        print(f"reap: trial {entry['number']} was stale and is now FAIL; {retry}")


if __name__ == "__main__":
    sys.exit(main())
