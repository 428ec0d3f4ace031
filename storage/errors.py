"""The one error the storage package raises for the user: the bottom of the import graph.

`storage` imports nothing of `search`; `search.errors` re-exports this class so that every
command catches the user's errors from one place.
"""


class StorageError(Exception):
    """The storage URL is malformed, its database cannot be reached, or it lacks the study.

    The message is one line naming the problem and the fix, with no password in it.
    """
