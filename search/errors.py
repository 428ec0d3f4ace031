"""Errors that stop the service with one clear line for the user (exit status 2).

The difference that matters (as in keras-tuner's errors.py): a user error stops the whole run
before anything is stored; a problem inside one trial fails that trial and the search carries on.
Every command catches `USER_ERRORS` and prints the message (passwords masked) as one line.

A polite stop (SIGTERM, from `kill`, systemd or Kubernetes) is taken as Ctrl-C is: `Terminated`
is a KeyboardInterrupt, so the running trial is failed and the workers stop instead of the
process ending where it stands.
"""

import signal

from storage.errors import StorageError


class UsageError(Exception):
    """Bad input the user can fix: the message names the problem and how to fix it."""


class DataError(UsageError):
    """A dataset file is missing or corrupt."""


# What a command reports as one line and exit status 2. StorageError comes from `storage`, which
# sits below `search` and so cannot derive from UsageError.
USER_ERRORS = (UsageError, StorageError)


class Terminated(KeyboardInterrupt):
    """SIGTERM received: stop as Ctrl-C stops (exit status 143 rather than 130)."""


def stop_on_sigterm() -> None:
    """From now on, SIGTERM raises Terminated in this process's main thread (once: a second
    SIGTERM during the clean-up is ignored; SIGKILL still ends it)."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


__all__ = [
    "USER_ERRORS",
    "DataError",
    "StorageError",
    "Terminated",
    "UsageError",
    "stop_on_sigterm",
]
