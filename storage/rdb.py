"""Open an Optuna RDB storage after checking the database is there and reachable.

The checks run before Optuna touches anything, so a bad URL never creates or alters tables.
On PostgreSQL and MySQL/MariaDB, Optuna's table creation is serialized with a database lock:
eight workers starting at once against an empty database would otherwise race on CREATE TABLE
and on the schema-version row.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import optuna
import sqlalchemy
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from storage.errors import StorageError
from storage.proxy_client import open_proxy
from storage.urls import check_url, is_proxy_url, mask_secrets, mask_url

CONNECT_TIMEOUT_SECONDS = 10
INIT_LOCK_SECONDS = 120
MAX_RETRY = 2  # a configuration whose trials keep dying is retried this many times
SQLITE_BUSY_SECONDS = 60  # how long a SQLite transaction waits for another's write lock
_INIT_LOCK_KEY = 0x5EA2C4  # any constant shared by every worker of this service
_SQLITE_HEADER = b"SQLite format 3\x00"
# What to check when a database server does not answer.
SERVER_HINT = "check the server is running, the host, port, user, password and database name"
_log = logging.getLogger(__name__)


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose heartbeat survives a database outage.

    Optuna's heartbeat thread calls `record_heartbeat` in a loop and ends on the first exception;
    the running trial would then look stale to other workers and be failed while it still
    trains. Here a failed beat is logged and the next one tried at the usual interval.
    """

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            # Optuna wraps most database errors in StorageInternalError.
            _log.warning(
                "heartbeat of trial %s not recorded (%s); trying again at the next beat",
                trial_id,
                type(exc).__name__,
            )


class RetryStaleTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose worker stopped beating, with the retry in user attributes.

    The new trial carries `retry_of` (the first failed trial's number) so the dashboard and
    `search.status` show it; Optuna keeps the same in system attributes.
    """

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        original = trial.system_attrs.get("failed_trial", trial.number)
        marked = copy.deepcopy(trial)
        # The retry runs in another process: the dead one's `worker` must not carry over.
        inherited = {k: v for k, v in trial.user_attrs.items() if k != "worker"}
        marked.user_attrs = {**inherited, "retry_of": original, "retry_reason": "stale"}
        _log.info(
            "trial %s failed (its worker is gone); queueing its configuration again", trial.number
        )
        super().__call__(study, marked)


def retry_callback(
    storage: optuna.storages.BaseStorage,
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """What retries a failed trial's configuration: the storage's own heartbeat callback, or,
    for a storage without heartbeats (the proxy's client), the same rule made here."""
    own = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    return own if own is not None else RetryStaleTrial(max_retry=MAX_RETRY)


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    max_retry: int = MAX_RETRY,
    kind: type[ResilientRDBStorage] = ResilientRDBStorage,
    pool_size: int | None = None,
) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`, or StorageError with one actionable line.

    A database URL gives an RDBStorage (of class `kind`). With `heartbeat_interval` (seconds),
    running trials beat; a trial whose worker stopped beating for 2 intervals + 10 s is failed
    by the next worker that looks, and its configuration retried (at most `max_retry` times) by
    Optuna's RetryHeartbeatStaleTrialCallback. Without it, no heartbeat is kept (read-only
    tools, tests). A `grpc://HOST:PORT` URL gives Optuna's client of the storage proxy
    (`search.proxy`); there the worker loop beats and the proxy fails silent trials.
    `pool_size`: connections a server database's pool keeps open (SQLAlchemy's default, 5,
    suits one worker; a proxy answering from many threads needs one each, or it would open and
    close a connection for most requests).
    """
    if is_proxy_url(url):
        return open_proxy(url)
    parsed = check_url(url)
    heartbeat: dict = {}
    if heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period(heartbeat_interval),
            "heartbeat_stale_trial_callback": RetryStaleTrial(max_retry=max_retry),
        }
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite(parsed, url)
        storage = _create(url, {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}, heartbeat, kind)
        serialize_sqlite(storage.engine)
        return storage
    # Both drivers (psycopg, pymysql) take connect_timeout: an unreachable server fails in
    # seconds rather than minutes. pool_pre_ping replaces connections a server restart broke.
    engine_kwargs: dict = {
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    }
    if pool_size is not None:
        engine_kwargs["pool_size"] = pool_size
    engine = _connect(url, engine_kwargs)
    try:
        with init_lock(engine):
            return _create(url, engine_kwargs, heartbeat, kind)
    finally:
        engine.dispose()


def close(storage: optuna.storages.BaseStorage) -> None:
    """Let go of a storage's connections: an RDB storage's pool, or the proxy client's channel."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.engine.dispose()
    elif isinstance(storage, optuna.storages.GrpcStorageProxy):
        storage.close()


def serialize_sqlite(engine: sqlalchemy.Engine) -> None:
    """Make every transaction on this SQLite engine a real, write-locked one (BEGIN IMMEDIATE).

    Python's sqlite3 driver starts a transaction only at the first write, so a read-then-write
    (Optuna claiming a WAITING trial, failing a stale one) is not atomic: two processes could
    both read "WAITING" and both claim the trial. SQLAlchemy's documented recipe ("Serializable
    isolation / Savepoints / Transactional DDL" for pysqlite) takes over BEGIN; IMMEDIATE takes
    SQLite's write lock at once, so concurrent transactions queue (up to SQLITE_BUSY_SECONDS)
    instead of interleaving. This is what makes several worker processes safe on one file.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI types
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sqlalchemy.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Connections Optuna opened while creating its tables predate the hooks: drop them.
    engine.dispose()


def grace_period(heartbeat_interval: int) -> int:
    """Seconds without a beat before a running trial counts as stale."""
    return 2 * heartbeat_interval + 10


def _create(
    url: str, engine_kwargs: dict, heartbeat: dict, kind: type[ResilientRDBStorage]
) -> optuna.storages.RDBStorage:
    try:
        return kind(url, engine_kwargs=engine_kwargs, **heartbeat)
    except (SQLAlchemyError, RuntimeError, ValueError) as exc:
        # RuntimeError: Optuna's schema-version check ("run optuna storage upgrade").
        raise StorageError(
            f"cannot open Optuna storage at {mask_url(url)}: {first_line(exc, url)}"
        ) from None


@contextlib.contextmanager
def init_lock(engine: sqlalchemy.Engine) -> Iterator[None]:
    """Hold a server-side lock while Optuna creates its tables and version row."""
    if engine.dialect.name == "postgresql":
        lock = "SELECT pg_advisory_lock(:key)"
        unlock = "SELECT pg_advisory_unlock(:key)"
        params: dict = {"key": _INIT_LOCK_KEY}
    else:  # mysql, mariadb
        lock = "SELECT GET_LOCK(:key, :seconds)"
        unlock = "SELECT RELEASE_LOCK(:key)"
        params = {"key": f"optuna-init-{_INIT_LOCK_KEY}", "seconds": INIT_LOCK_SECONDS}
    with engine.connect() as connection:
        got = connection.execute(sqlalchemy.text(lock), params).scalar()
        # pg_advisory_lock waits and returns nothing useful; GET_LOCK answers 1 (taken),
        # 0 (timed out) or NULL (error): without the lock, creating tables would race.
        if engine.dialect.name != "postgresql" and got != 1:
            raise StorageError(
                f"could not take the table-creation lock on {mask_url(str(engine.url))} within "
                f"{INIT_LOCK_SECONDS} s (GET_LOCK answered {got}); another worker may be stuck "
                "creating the tables: retry, or check the server"
            )
        try:
            yield
        finally:
            with contextlib.suppress(SQLAlchemyError):
                connection.execute(sqlalchemy.text(unlock), params)
                connection.commit()


def _check_sqlite(parsed: URL, url: str) -> None:
    database = parsed.database
    if not database or database == ":memory:":
        raise StorageError(
            f"storage URL {url!r} is an in-memory SQLite database, which keeps nothing; "
            "give a file, e.g. sqlite:///studies.db"
        )
    path = Path(database).expanduser()
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot create SQLite database {path}: folder {path.parent} does not exist; "
            "create it or choose another --storage path"
        )
    if path.exists():
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
        if header and header != _SQLITE_HEADER:
            raise StorageError(
                f"{path} is not a SQLite database; point --storage at a new file or an "
                "existing study database"
            )


def _connect(url: str, engine_kwargs: dict) -> sqlalchemy.Engine:
    """An engine whose server answered; StorageError naming the problem otherwise."""
    engine = make_engine(url, engine_kwargs)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StorageError(
            f"cannot reach database {mask_url(url)}: {first_line(exc, url)}; {SERVER_HINT}"
        ) from None
    return engine


def make_engine(
    url: str, engine_kwargs: dict, *, shown_url: str | None = None
) -> sqlalchemy.Engine:
    """SQLAlchemy's engine for `url`, not yet connected; StorageError when the driver is wrong.

    `shown_url` is the URL the user gave, named in the message when `url` is a rewritten form
    of it (a read-only SQLite URI, say).
    """
    shown = url if shown_url is None else shown_url
    try:
        return sqlalchemy.create_engine(url, **engine_kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(
            f"cannot use storage URL {mask_url(shown)}: {first_line(exc, shown)}; "
            "check the driver name (postgresql+psycopg, mysql+pymysql)"
        ) from None


def first_line(exc: BaseException, url: str) -> str:
    """The driver's own message, first line only, without SQLAlchemy's boilerplate or secrets."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    return mask_secrets(text, url)


# MySQL/MariaDB answer concurrent inserts into one unique index with "Deadlock found ... try
# restarting transaction" (1213) or a lock wait timeout (1205): the documented remedy is to retry.
_RETRYABLE = {1213, 1205}
# Any other operational error (the server restarting, a dropped connection, SQLite busy) is
# retried for this long: a retrain that trained for minutes should not die of a restart.
OUTAGE_SECONDS = 90.0
T = TypeVar("T")


def retry_outage(attempt: Callable[[], T], tries: int = 5, outage: float | None = None) -> T:
    """`attempt()`, tried again while the server says to retry (up to `tries` times in all), or
    while it cannot be reached (up to `outage` seconds); anything else goes to the caller.

    Optuna wraps a failed commit in StorageInternalError; it counts as an outage too.
    """
    deadline = time.monotonic() + (OUTAGE_SECONDS if outage is None else outage)
    deadlocks = 0
    while True:
        try:
            return attempt()
        except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError) as exc:
            orig = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None)
            if getattr(orig, "args", (None,))[0] in _RETRYABLE:
                deadlocks += 1
                if deadlocks >= tries:
                    raise
                time.sleep(random.uniform(0.05, 0.3))
            elif time.monotonic() < deadline:
                time.sleep(1.0)
            else:
                raise
