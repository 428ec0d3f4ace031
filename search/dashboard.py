"""`python -m search.dashboard --study NAME`: optuna-dashboard on a study's storage and artifacts.

Serves optuna-dashboard's own app (`search.viewer.server`) with the study's artifact store, so
retrained models and learning curves linked to trials can be downloaded from the trial pages,
and prints the study's page URL. No authentication: see `search.viewer.server`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search.cli import Parser, tcp_port
from search.errors import USER_ERRORS, UsageError, stop_on_sigterm
from search.study.config import default_storage
from search.viewer.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    build_app,
    open_dashboard_storage,
    serve,
    startup_warnings,
    study_url,
)
from storage.artifacts import default_artifact_dir
from storage.readonly import find_study_id
from storage.urls import mask_secrets, mask_url

PROG = "search.dashboard"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"python -m {PROG}",
        description="Open a study in optuna-dashboard, with its artifacts (no authentication).",
    )
    flag = parser.add_argument
    flag("--study", required=True, metavar="NAME", help="name of the study in the storage")
    parser.add_storage_flag()
    flag("--host", default=DEFAULT_HOST, help=f"address to listen on; default {DEFAULT_HOST}")
    flag("--port", type=tcp_port, default=DEFAULT_PORT, help=f"port; default {DEFAULT_PORT}")
    flag(
        "--artifact-dir",
        metavar="DIR",
        help="artifact store; default: artifacts/ beside a SQLite file, else ./artifacts",
    )
    flag(
        "--read-only",
        action="store_true",
        help="refuse every change: no deleting or editing studies, notes or artifacts",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = args.storage or default_storage()
    try:
        storage = open_dashboard_storage(url, read_only=args.read_only)
        study_id = find_study_id(storage, args.study, url)
        folder = default_artifact_dir(url, args.artifact_dir)
        try:
            server = serve(
                build_app(storage, folder, read_only=args.read_only), args.host, args.port
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
                "choose another --port or --host"
            ) from None
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {mask_secrets(str(exc), url)}", file=sys.stderr)
        return 2
    for line in startup_warnings(args.host, args.port, url, read_only=args.read_only):
        print(line, file=sys.stderr)
    missing = "" if folder.is_dir() else " (does not exist yet: no artifacts to show)"
    print(
        f"study {args.study!r} in {mask_url(url)}; artifacts in {folder}{missing}"
        + ("; read-only" if args.read_only else ""),
        flush=True,
    )
    print(f"open {study_url(args.host, args.port, study_id)}  (Ctrl-C stops)", flush=True)
    stop_on_sigterm()  # `kill PID`, systemd: a clean stop, as Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
