"""Errors that stop the service with one clear line for the user (exit status 2).

The difference that matters (as in keras-tuner's errors.py): a user error stops the whole run
before anything is stored; a problem inside one trial fails that trial and the search carries on.
Every command catches `USER_ERRORS` and prints the message (passwords masked) as one line.
"""

from storage.errors import StorageError


class UsageError(Exception):
    """Bad input the user can fix: the message names the problem and how to fix it."""


class DataError(UsageError):
    """A dataset file is missing or corrupt."""


# What a command reports as one line and exit status 2. StorageError comes from `storage`, which
# sits below `search` and so cannot derive from UsageError.
USER_ERRORS = (UsageError, StorageError)

__all__ = ["USER_ERRORS", "DataError", "StorageError", "UsageError"]
