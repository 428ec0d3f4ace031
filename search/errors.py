"""Errors that stop the service with one clear line for the user (exit status 2).

The difference that matters (as in keras-tuner's errors.py): a `UsageError` stops the whole run
before anything is stored; a problem inside one trial fails that trial and the search carries on.
"""


class UsageError(Exception):
    """Bad input the user can fix: the message names the problem and how to fix it."""


class DataError(UsageError):
    """A dataset file is missing or corrupt."""


class StorageError(UsageError):
    """The storage URL is malformed or its database cannot be reached."""
