"""optuna-dashboard's own WSGI app (not a copy) on a study's storage and artifact store.

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

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import IO, Any
from wsgiref.simple_server import WSGIServer, make_server

import optuna
import optuna_dashboard

from storage.rdb import open_storage
from storage.readonly import open_read_only, require_existing_database
from storage.urls import check_url, is_loopback, is_proxy_url

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


def open_dashboard_storage(url: str, *, read_only: bool) -> optuna.storages.BaseStorage:
    """The study storage; never creates a database, read-only where asked.

    Through a storage proxy (grpc://) only the app's own guard keeps a read-only dashboard from
    writing: Optuna's proxy client has no read-only mode.
    """
    if is_proxy_url(url):
        return open_storage(url)
    if read_only:
        return open_read_only(url)
    require_existing_database(url)  # open_storage would create a missing SQLite file
    return open_storage(url)


def build_app(
    storage: optuna.storages.BaseStorage, artifact_dir: Path, *, read_only: bool
) -> WSGIApp:
    """optuna-dashboard's WSGI app on `storage` and the FileSystemArtifactStore at artifact_dir."""
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


def startup_warnings(host: str, port: int, url: str, *, read_only: bool) -> list[str]:
    """What the user must know before the server answers anyone."""
    lines = []
    if not is_loopback(host):
        lines.append(
            f"warning: the dashboard has no authentication; anyone who can reach {host}:{port} "
            "can read every study in this storage"
            + ("" if read_only else " and delete studies, notes and artifacts (see --read-only)")
        )
    if read_only and is_proxy_url(url):
        lines.append(
            "read-only: this dashboard refuses every change, but the storage proxy itself "
            "accepts writes from anyone who reaches it"
        )
    elif read_only and check_url(url).get_backend_name() != "sqlite":
        lines.append(read_only_role_advice(url))
    return lines


def study_url(host: str, port: int, study_id: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard/studies/{study_id}"
