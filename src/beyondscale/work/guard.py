"""A unit run under guard: its log captured, an error it raises turned into a `UnitFailed` output.

Both executors run units through `guarded`, so an error raised by a unit's own code (a model that does
not load, a task the engine cannot score) ends that unit alone, is reported once with its cause and is
never retried: running the same code on the same data would fail the same way. Only a worker that
died (the process, its node, an object it held) is retried, by the executor that lost it.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import time
import traceback
from collections.abc import Iterator

from beyondscale.errors import UserError
from beyondscale.work.unit import BatchResult, Unit, UnitFailed, UnitLog, UnitOutput, run_unit


def _header(unit: Unit, attempt: int) -> str:
    tasks = ", ".join(f"{t.task} ({len(t.items)} items)" for t in unit.tasks) or "facts only"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} unit {unit.model.ref.name} [{unit.model.model_key}] "
        f"attempt {attempt} on {socket.gethostname()} pid {os.getpid()} device {unit.model.load.device}: "
        f"{tasks}\n"
    )


def cause_of(error: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, UserError) and message:
        return message  # already one line naming what is wrong
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def guarded(unit: Unit, attempt: int = 1) -> Iterator[UnitOutput]:
    """`run_unit(unit)`'s outputs, then its log; an exception becomes `UnitFailed` (not retriable)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Sent at once: if the worker dies, the log still says where and when this attempt ran.
    yield UnitLog(unit.model.model_key, _header(unit, attempt))
    root = logging.getLogger()
    root.addHandler(handler)
    start, items = time.perf_counter(), 0
    failure = None
    try:
        for output in run_unit(unit):
            if isinstance(output, BatchResult):
                items += len(output.rows)
            yield output
    except Exception as error:  # noqa: BLE001 - user code: reported once, never retried
        detail = traceback.format_exc()
        buffer.write(detail)
        failure = UnitFailed(model_key=unit.model.model_key, cause=cause_of(error), detail=detail,
                             user_error=isinstance(error, UserError), attempts=attempt)
    finally:
        root.removeHandler(handler)
    status = f"failed: {failure.cause}" if failure else "done"
    buffer.write(f"{items} items computed in {time.perf_counter() - start:.2f} s; {status}\n")
    yield UnitLog(unit.model.model_key, buffer.getvalue())
    if failure is not None:
        yield failure
