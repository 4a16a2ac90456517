"""The entry point's contract: a usage error or a user mistake is one line on stderr, exit status 2.

typer (0.29 and later) bundles its own copy of click, so the standalone `click.exceptions.ClickException`
never matches what it raises; the classes are taken from the module typer itself raises them from
(`typer.BadParameter`'s module), with the standalone click's added when it is installed, so the check
holds whichever copy a typer version uses.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from beyondscale.errors import UserError

INTERRUPTED = 130


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException classes, Abort classes) of typer's click and of the standalone one if present."""
    modules = [sys.modules[typer.BadParameter.__module__]]
    try:
        import click.exceptions

        modules.append(click.exceptions)
    except ImportError:  # typer's bundled copy is all there is
        pass
    errors = tuple({m.ClickException for m in modules if hasattr(m, "ClickException")})
    aborts = tuple({typer.Abort, *(m.Abort for m in modules if hasattr(m, "Abort"))})
    return errors, aborts


def one_line(message: str) -> str:
    """`error: MESSAGE` with any line breaks folded: one line, whatever the message."""
    return "error: " + " ".join(str(message).split())


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_app(app: Any) -> int:
    """Run the typer `app` on sys.argv; its exit status. Usage errors and `UserError`s print one line."""
    click_errors, aborts = _click_exceptions()
    try:
        status = app(standalone_mode=False)
    except UserError as error:
        _say(one_line(str(error)))
        return error.exit_code
    except KeyboardInterrupt:
        status = INTERRUPTED
    except Exception as error:
        if isinstance(error, aborts):
            status = INTERRUPTED
        elif type(error).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as click prints it
            error.show()
            return 2
        elif isinstance(error, click_errors):
            _say(one_line(error.format_message()))
            return 2
        else:
            raise
    if status == INTERRUPTED:
        _say("interrupted: finished batches are stored; run the same command again to resume")
    return status if isinstance(status, int) else 0
