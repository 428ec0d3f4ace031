"""What the commands share on their command line: a one-line-error parser and number types.

`search.run`, `search.status`, `search.dashboard`, `search.report` and `search.proxy` build their
flags on `Parser`. A number type only one command uses (a seed) stays in that command's module,
built on `whole_number` so every "not a whole number" error reads the same; the two servers
(dashboard, proxy) share the port type, status and the proxy the heartbeat's seconds.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit status 2, as argparse)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def add_storage_flag(self) -> None:
        """--storage, which every command takes with the same default."""
        self.add_argument(
            "--storage",
            metavar="URL",
            help="SQLAlchemy URL of the study database, or grpc://HOST:PORT of a search.proxy; "
            "default: env SEARCH_STORAGE, else sqlite:///studies.db",
        )


def whole_number(text: str, *, unit: str = "") -> int:
    """`text` as an int; `unit` (" of seconds", say) completes the error message."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{unit}") from None


def positive_int(text: str, *, unit: str = "") -> int:
    """`text` as an int of at least 1 (a count, an interval); `unit` as for `whole_number`."""
    value = whole_number(text, unit=unit)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a positive whole number{unit}")
    return value


def seconds(text: str) -> int:
    """`text` as a positive whole number of seconds: the servers' and status's --heartbeat."""
    return positive_int(text, unit=" of seconds")


def tcp_port(text: str) -> int:
    """`text` as a TCP port (1-65535): the servers' --port."""
    value = whole_number(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (1-65535)")
    return value
