"""`python -m search.status --study NAME`: what a study's trials are doing, and reaping stale ones.

Shows the trials by state, every running trial with its worker and the age of its last heartbeat,
the best trial so far and the storage URL without its password (`search.study.health`).

Without --reap the storage is opened by `storage.readonly.open_read_only` (SQLite's `mode=ro`;
read-only transactions on PostgreSQL and MySQL), so looking never creates a database or a table
and never writes. --reap then opens it as a worker does and fails the stale trials, whose
configurations are queued again.

Through a storage proxy (`--storage grpc://HOST:PORT`) it shows the same, except the heartbeats'
ages, which only the database holds; the proxy reaps stale trials itself, so --reap is refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import optuna
from sqlalchemy.exc import SQLAlchemyError

from search.cli import Parser, seconds
from search.errors import USER_ERRORS, UsageError
from search.study.config import DEFAULT_HEARTBEAT, default_storage
from search.study.health import format_status, reap, status
from storage.rdb import close, first_line, open_storage
from storage.readonly import find_study_id, open_read_only
from storage.urls import is_proxy_url, mask_secrets, mask_url

PROG = "search.status"


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
        type=seconds,
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
    args = build_parser().parse_args(argv)
    url = args.storage or default_storage()
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        behind_proxy = is_proxy_url(url)
        if behind_proxy and args.reap:
            raise UsageError(
                "--reap is the proxy's own job behind a storage proxy: search.proxy fails "
                "stale trials every few seconds; to reap by hand, give the database URL"
            )
        # Through the proxy Optuna's client only reads; it has no write-protected mode.
        storage = open_storage(url) if behind_proxy else open_read_only(url)
        try:
            find_study_id(storage, args.study, url)
            study = optuna.load_study(study_name=args.study, storage=storage)
            summary = status(study, storage, args.heartbeat, url=url)
        finally:
            close(storage)
        for line in format_status(summary):
            print(line)
        if args.reap:
            _print_reaped(reap(url, args.study, args.heartbeat))
        elif any(run["stale"] for run in summary["running"]):
            print("hint: --reap fails the stale trials so that their configurations run again")
    except USER_ERRORS as exc:
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
