"""`python -m search.dashboard --study NAME`: optuna-dashboard on a study's storage and artifacts.

Serves the optuna-dashboard library's own WSGI app (not a copy) on the study's storage, with the
study's FileSystemArtifactStore, so retrained models and learning curves linked to trials can be
downloaded from the trial pages. Prints the study's page URL.

The dashboard has no authentication: anyone who can reach the port can read every study in the
storage and, unless --read-only, delete studies and artifacts, edit notes and mark trials.
Hence the default host 127.0.0.1 and a warning for anything else.

--read-only holds at three layers, so a route the first layer misses is still stopped:
1. HTTP: every request other than GET/HEAD/OPTIONS is answered 403 (every write route of the
   dashboard, and only those, uses POST/PUT/DELETE);
2. artifacts: the artifact store is wrapped so `write` and `remove` raise;
3. database (`storage.readonly`): SQLite is opened read-only by SQLite itself (`mode=ro`); a
   PostgreSQL or MySQL session is opened with read-only transactions. A server session setting
   is a client-side choice, so the command also says how to create a read-only role, the real
   guarantee there.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import IO, TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer, make_server

from search.cli import Parser, whole_number
from search.errors import UsageError
from storage.urls import check_url, default_artifact_dir, mask_secrets, mask_url

if TYPE_CHECKING:
    import optuna

PROG = "search.dashboard"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ONLY_REASON = "this dashboard was started with --read-only: nothing can be changed"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ReadOnlyError(PermissionError):
    """A write reached a dashboard started with --read-only."""


class ReadOnlyArtifactStore:
    """An Optuna artifact store that can be read but neither written nor emptied."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def open_reader(self, artifact_id: str) -> IO[bytes]:
        return self._store.open_reader(artifact_id)

    def write(self, artifact_id: str, content_body: IO[bytes]) -> None:
        raise ReadOnlyError(f"{READ_ONLY_REASON} (artifact {artifact_id} not written)")

    def remove(self, artifact_id: str) -> None:
        raise ReadOnlyError(f"{READ_ONLY_REASON} (artifact {artifact_id} not removed)")


def refuse_writes(app: WSGIApp) -> WSGIApp:
    """The app, with every request that could change something answered 403 before it runs."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() in SAFE_METHODS:
            return app(environ, start_response)
        # The dashboard's front end shows a JSON body's "reason" to the user.
        body = json.dumps({"reason": READ_ONLY_REASON}).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return guarded


def read_only_role_advice(url: str) -> str:
    """What to do on a server database for a read-only guarantee that does not rely on us."""
    parsed = check_url(url)
    database = parsed.database or "<database>"
    if parsed.get_backend_name() == "postgresql":
        grants = (
            "CREATE ROLE dashboard_ro LOGIN PASSWORD '...'; "
            f"GRANT CONNECT ON DATABASE {database} TO dashboard_ro; "
            "GRANT USAGE ON SCHEMA public TO dashboard_ro; "
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO dashboard_ro;"
        )
    else:
        grants = (
            f"CREATE USER 'dashboard_ro'@'%' IDENTIFIED BY '...'; "
            f"GRANT SELECT ON {database}.* TO 'dashboard_ro'@'%';"
        )
    return (
        "read-only: this session's transactions are read-only, but that is a client setting; "
        f"for a guarantee, connect as a role that may only read, e.g. {grants} and pass its "
        "user in --storage"
    )


def open_dashboard_storage(url: str, *, read_only: bool) -> optuna.storages.RDBStorage:
    """The study storage; never creates a database, read-only where asked."""
    from storage.rdb import open_storage
    from storage.readonly import open_read_only, require_existing_database

    if read_only:
        return open_read_only(url)
    require_existing_database(url)  # open_storage would create a missing SQLite file
    return open_storage(url)


def build_app(
    storage: optuna.storages.BaseStorage, artifact_dir: Path, *, read_only: bool
) -> WSGIApp:
    """optuna-dashboard's WSGI app on `storage` and the FileSystemArtifactStore at artifact_dir."""
    import optuna
    import optuna_dashboard

    store: Any = optuna.artifacts.FileSystemArtifactStore(artifact_dir)
    if read_only:
        store = ReadOnlyArtifactStore(store)
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    return refuse_writes(app) if read_only else app


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread a request, as optuna-dashboard's own CLI: a page loads many files at once."""

    daemon_threads = True


def serve(app: WSGIApp, host: str, port: int) -> WSGIServer:
    """A bound (not yet serving) threaded WSGI server; OSError when the address is taken."""
    return make_server(host, port, app, server_class=_ThreadedWSGIServer)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_warnings(host: str, port: int, url: str, *, read_only: bool) -> list[str]:
    """What the user must know before the server answers anyone."""
    lines = []
    if not is_loopback(host):
        lines.append(
            f"warning: the dashboard has no authentication; anyone who can reach {host}:{port} "
            "can read every study in this storage"
            + ("" if read_only else " and delete studies, notes and artifacts (see --read-only)")
        )
    if read_only and check_url(url).get_backend_name() != "sqlite":
        lines.append(read_only_role_advice(url))
    return lines


def study_url(host: str, port: int, study_id: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard/studies/{study_id}"


def _port(text: str) -> int:
    value = whole_number(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (1-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"python -m {PROG}",
        description="Open a study in optuna-dashboard, with its artifacts (no authentication).",
    )
    flag = parser.add_argument
    flag("--study", required=True, metavar="NAME", help="name of the study in the storage")
    parser.add_storage_flag()
    flag("--host", default=DEFAULT_HOST, help=f"address to listen on; default {DEFAULT_HOST}")
    flag("--port", type=_port, default=DEFAULT_PORT, help=f"port; default {DEFAULT_PORT}")
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
    from search.config import default_storage

    args = build_parser().parse_args(argv)
    url = args.storage or default_storage()
    # Imported after the flags are parsed, so --help and a usage error need not load Optuna.
    from storage.readonly import find_study_id

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
    except UsageError as exc:
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
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
