"""User-facing errors, and the one record of why something stopped.

A `UserError` is a mistake the user can fix (a path, a flag, a task file). The CLI prints its
message as one line and exits with status 2; it never shows a traceback for these.
"""


from dataclasses import dataclass


class UserError(Exception):
    """A mistake in the user's input; `str(err)` is the one line the CLI prints."""

    exit_code = 2


@dataclass(frozen=True)
class Failure:
    """Why a unit of work, a job or a model stopped: one line (`ExceptionType: message`), its traceback,
    whether the user's input caused it (a `UserError`: reported once, never retried) and the attempts made."""

    cause: str
    detail: str = ""
    user_error: bool = False
    attempts: int = 1
