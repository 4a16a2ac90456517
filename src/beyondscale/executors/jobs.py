"""Whole jobs through an executor: one call that returns one picklable value (a training run, a model's
generation benchmark), as opposed to evaluation units that stream batches.

The driver stays the only writer: a job returns its record and the caller stores it. An error raised by
the job's code comes back as a failure (reported once, never retried); a worker that died is retried
by Ray (`max_retries`), which suits jobs that resume on their own (training continues from its last
checkpoint).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from beyondscale.errors import Failure, UserError
from beyondscale.work.guard import cause_of


@dataclass(frozen=True)
class Job:
    """`fn(*args)` somewhere; `fn` must be a module-level function (workers import it)."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_bytes: int | None = None


@dataclass(frozen=True)
class JobResult:
    """A job's value, or why it failed."""

    name: str
    value: Any = None
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def call_guarded(name: str, fn: Callable[..., Any], args: tuple) -> JobResult:
    """Run the job; its own exception becomes a failed result (so Ray never retries it)."""
    try:
        return JobResult(name, fn(*args))
    except Exception as error:  # noqa: BLE001 - user code: reported once, never retried
        return JobResult(name, failure=Failure(cause_of(error), traceback.format_exc(), isinstance(error, UserError)))


def local_map(jobs: Iterable[Job]) -> Iterator[JobResult]:
    for job in jobs:
        yield call_guarded(job.name, job.fn, job.args)


def map_jobs(executor: Any, jobs: Iterable[Job]) -> Iterator[JobResult]:
    """Through the executor (Ray, or here one after the other when none is given)."""
    return executor.map(jobs) if executor is not None else local_map(jobs)


def raise_failures(results: Iterable[JobResult], what: str) -> None:
    """After every job has had its chance: one line naming each failed job and its cause."""
    failed = [r for r in results if not r.ok]
    if failed:
        lines = "; ".join(f"{r.name}: {r.failure.cause}" for r in failed if r.failure)
        raise UserError(f"{what}: {len(failed)} failed ({lines})")
