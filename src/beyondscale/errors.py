"""User-facing errors.

A `UserError` is a mistake the user can fix (a path, a flag, a task file). The CLI prints its
message as one line and exits with status 2; it never shows a traceback for these.
"""


class UserError(Exception):
    """A mistake in the user's input; `str(err)` is the one line the CLI prints."""

    exit_code = 2
