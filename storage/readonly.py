"""Open an Optuna storage only to look at it: nothing is written, and nothing is created.

Shared by `search.status` (without --reap) and `search.dashboard --read-only`. SQLite is opened
in SQLite's own read-only mode (`mode=ro`), so even a bug in a caller could not change the file.
PostgreSQL and MySQL/MariaDB sessions start with read-only transactions, a client-side setting:
the guarantee there is a role that may only read. A missing SQLite file is an error, never a new
empty database, and a database without Optuna's tables is an error, never given them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
import sqlalchemy
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from storage.errors import StorageError
from storage.rdb import CONNECT_TIMEOUT_SECONDS, SERVER_HINT, first_line, make_engine
from storage.urls import check_url, mask_url

MAX_LISTED_STUDIES = 10


def open_read_only(url: str) -> optuna.storages.RDBStorage:
    """The Optuna storage at `url`, opened so that nothing can be written or created.

    StorageError (one line, no password) when the URL is malformed, the SQLite file is missing,
    the server cannot be reached, or the database holds no Optuna tables.
    """
    parsed = require_existing_database(url)
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        opened = read_only_sqlite_url(parsed.database or "")
    else:
        connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if parsed.get_backend_name() == "postgresql":
            connect_args["options"] = "-c default_transaction_read_only=on"
        else:  # mysql, mariadb
            connect_args["init_command"] = "SET SESSION TRANSACTION READ ONLY"
        engine_kwargs = {"pool_pre_ping": True, "connect_args": connect_args}
        opened = url
    # Looked at before Optuna is: Optuna's own check of an unreachable server or of a database
    # without its tables ends in a StorageInternalError that names neither.
    engine = make_engine(opened, engine_kwargs, shown_url=url)
    try:
        has_tables = sqlalchemy.inspect(engine).has_table("version_info")
    except SQLAlchemyError as exc:
        hint = (
            "check --storage names a SQLite study database"
            if parsed.get_backend_name() == "sqlite"
            else SERVER_HINT
        )
        raise StorageError(
            f"cannot read database {mask_url(url)}: {first_line(exc, url)}; {hint}"
        ) from None
    finally:
        engine.dispose()
    if not has_tables:
        raise StorageError(f"{mask_url(url)} holds no Optuna study tables; check --storage")
    try:
        # A read-only database cannot take Optuna's CREATE TABLE; an Optuna database has them.
        return optuna.storages.RDBStorage(
            opened, engine_kwargs=engine_kwargs, skip_table_creation=True
        )
    except (SQLAlchemyError, RuntimeError, ValueError) as exc:
        # RuntimeError: Optuna's schema-version check ("run optuna storage upgrade").
        raise StorageError(
            f"cannot open Optuna storage at {mask_url(url)}: {first_line(exc, url)}"
        ) from None


def require_existing_database(url: str) -> URL:
    """`url`, parsed and checked; StorageError when it names a SQLite file that does not exist.

    Opening a missing SQLite file would create it, and a tool that only looks must not.
    """
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or not Path(database).expanduser().is_file():
            raise StorageError(
                f"no SQLite database file {database!r} (nothing was created); check --storage: "
                "it must name an existing study database, e.g. sqlite:///studies.db"
            )
    return parsed


def read_only_sqlite_url(database: str | Path) -> str:
    """A SQLAlchemy URL that opens the SQLite file through SQLite's own read-only mode."""
    path = Path(database).expanduser().resolve()
    # Quoted twice: SQLAlchemy unquotes the URL's database part once, and SQLite must then still
    # get an escaped URI filename, or a '#' or '?' in the path would cut it short (and `mode=ro`
    # with it).
    return f"sqlite:///file:{quote(quote(str(path)))}?mode=ro&uri=true"


def find_study_id(storage: optuna.storages.BaseStorage, name: str, url: str) -> int:
    """The id of the stored study `name`, or a StorageError naming the studies that do exist.

    `url` is the storage URL the user gave, shown without its password.
    """
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        names = sorted(s.study_name for s in storage.get_all_studies())
        shown = ", ".join(repr(n) for n in names[:MAX_LISTED_STUDIES])
        more = " ..." if len(names) > MAX_LISTED_STUDIES else ""
        raise StorageError(
            f"no study named {name!r} in {mask_url(url)}; "
            + (f"studies there: {shown}{more}" if names else "it holds no study yet")
        ) from None
