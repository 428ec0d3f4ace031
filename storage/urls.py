"""Storage URL checks and password masking: no password ever reaches a message or log line."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from storage.errors import StorageError

SUPPORTED = ("sqlite", "postgresql", "mysql", "mariadb")
EXAMPLES = (
    "sqlite:///studies.db, postgresql+psycopg://user@host:5432/db, "
    "mysql+pymysql://user@host:3306/db"
)
# user:password@ inside anything that looks like a URL; used where SQLAlchemy cannot parse it.
_CREDENTIALS = re.compile(r"(?P<scheme>[\w+.-]+://[^:/@\s]*):(?P<password>[^@\s]*)@")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, parseable or not."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is still masked by the pattern
        return _CREDENTIALS.sub(r"\g<scheme>:***@", url)


def mask_secrets(text: str, url: str) -> str:
    """`text` (an error message, say) with the password of `url` removed wherever it appears."""
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001
        password = None
    text = _CREDENTIALS.sub(r"\g<scheme>:***@", text)
    if password:
        text = text.replace(str(password), "***")
    return text


def check_url(url: str) -> URL:
    """Parse and check a storage URL; raise StorageError naming the problem and the fix."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StorageError(
            f"malformed storage URL {mask_url(url)!r}; expected a SQLAlchemy URL such as {EXAMPLES}"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED:
        raise StorageError(
            f"unsupported database {parsed.get_backend_name()!r} in storage URL "
            f"{mask_url(url)!r}; use SQLite, PostgreSQL or MySQL/MariaDB, e.g. {EXAMPLES}"
        )
    if parsed.get_backend_name() != "sqlite" and not parsed.database:
        raise StorageError(
            f"storage URL {mask_url(url)!r} names no database; add it after the host, "
            f"e.g. {EXAMPLES}"
        )
    return parsed


PROXY_SCHEME = "grpc"
PROXY_DEFAULT_PORT = 13000  # Optuna's run_grpc_proxy_server default


def is_proxy_url(url: str) -> bool:
    """Whether `url` names a storage proxy (`grpc://HOST:PORT`) rather than a database."""
    return url.strip().lower().startswith(f"{PROXY_SCHEME}://")


def parse_proxy_url(url: str) -> tuple[str, int]:
    """(host, port) of a `grpc://HOST[:PORT]` URL; StorageError naming the problem otherwise."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port or PROXY_DEFAULT_PORT
    except ValueError:  # a port that is not a number, or out of range
        port = None
    if (
        parts.scheme.lower() != PROXY_SCHEME
        or not parts.hostname
        or port is None
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise StorageError(
            f"malformed proxy URL {mask_url(url)!r}; expected grpc://HOST:PORT, e.g. "
            f"grpc://127.0.0.1:{PROXY_DEFAULT_PORT}"
        )
    return parts.hostname, port


def check_storage_url(url: str) -> None:
    """Check a URL that may name a database or a storage proxy; StorageError if it is bad."""
    if is_proxy_url(url):
        parse_proxy_url(url)
    else:
        check_url(url)


def is_loopback(host: str) -> bool:
    """Whether a server bound to `host` is reachable from this machine only (the dashboard's and
    the proxy's warnings: neither authenticates nor encrypts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
