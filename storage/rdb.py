"""Open an Optuna RDB storage after checking the database is there and reachable.

The checks run before Optuna touches anything, so a bad URL never creates or alters tables.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from search.errors import StorageError
from storage.urls import check_url, mask_secrets, mask_url

CONNECT_TIMEOUT_SECONDS = 10
_SQLITE_HEADER = b"SQLite format 3\x00"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDBStorage for `url`, or StorageError with one actionable line."""
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite(parsed, url)
        engine_kwargs: dict = {}
    else:
        # Both drivers (psycopg, pymysql) take connect_timeout: an unreachable server fails in
        # seconds rather than minutes.
        engine_kwargs = {
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        }
        _check_server(url, engine_kwargs)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (SQLAlchemyError, RuntimeError, ValueError) as exc:
        # RuntimeError: Optuna's schema-version check ("run optuna storage upgrade").
        raise StorageError(
            f"cannot open Optuna storage at {mask_url(url)}: {_first_line(exc, url)}"
        ) from None


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


def _check_server(url: str, engine_kwargs: dict) -> None:
    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(
            f"cannot use storage URL {mask_url(url)}: {_first_line(exc, url)}; "
            "check the driver name (postgresql+psycopg, mysql+pymysql)"
        ) from None
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StorageError(
            f"cannot reach database {mask_url(url)}: {_first_line(exc, url)}; check the server "
            "is running, the host, port, user, password and database name"
        ) from None
    finally:
        engine.dispose()


def _first_line(exc: BaseException, url: str) -> str:
    """The driver's own message, first line only, without SQLAlchemy's boilerplate or secrets."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    return mask_secrets(text, url)
