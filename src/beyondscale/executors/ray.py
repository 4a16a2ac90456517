"""The Ray executor: each unit (one model, all its tasks) is a Ray task with explicit resources, and its
outputs stream back to the driver batch by batch (a streaming generator), where the single writer
commits them. Nothing on a worker touches the store.

Failures: an error raised by the unit's own code comes back as data (`UnitFailed`, see work/guard.py)
and is never retried. A worker that died (process killed, node lost, object lost, out of memory) is
retried here, in the driver, up to `max_retries` times, and only for the items not yet received: what
arrived is already stored, and the writer's content keys make any replay a no-op.

Ray is imported only when a `RayExecutor` is used; the local executor never needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from beyondscale.errors import Failure, UserError
from beyondscale.executors.jobs import Job, JobResult, call_guarded
from beyondscale.executors.resources import Resources, estimate_memory, model_resources
from beyondscale.work.guard import cause_of, guarded
from beyondscale.work.unit import BatchResult, FactsResult, TaskJob, Unit, UnitFailed, UnitLog, UnitOutput

# How many batches a worker may run ahead of the driver's writer (bounds the object store's backlog).
BACKLOG = 4


def _run_guarded(unit: Unit, attempt: int) -> Iterator[UnitOutput]:
    """What a Ray worker runs (a module-level function, so workers import it instead of unpickling code)."""
    yield from guarded(unit, attempt)


def _worker_died_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a lost worker, node or object: the unit itself did nothing wrong."""
    import ray.exceptions as e

    return (
        e.WorkerCrashedError,
        e.NodeDiedError,
        e.ObjectLostError,
        e.OwnerDiedError,
        e.RayActorError,
        e.LocalRayletDiedError,
        e.OutOfMemoryError,
        e.TaskCancelledError,
        e.RaySystemError,
    )


@dataclass
class _Attempt:
    """One unit in flight: what was asked for, what has come back, which attempt this is."""

    unit: Unit
    attempt: int = 1
    received: set[str] = field(default_factory=set)  # item keys whose batch reached the driver
    facts_seen: bool = False

    def track(self, output: UnitOutput) -> None:
        if isinstance(output, BatchResult):
            self.received.update(row[0] for row in output.rows)
        elif isinstance(output, FactsResult):
            self.facts_seen = True

    def remainder(self) -> Unit | None:
        """The unit cut to what has not come back; None when everything has."""
        tasks = []
        for t in self.unit.tasks:
            keep = [i for i, key in enumerate(t.item_keys) if key not in self.received]
            if keep:
                tasks.append(
                    TaskJob(
                        t.task_key,
                        t.task,
                        tuple(t.items[i] for i in keep),
                        tuple(t.item_keys[i] for i in keep),
                    )
                )
        want_facts = self.unit.want_facts and not self.facts_seen
        return replace(self.unit, tasks=tuple(tasks), want_facts=want_facts) if tasks or want_facts else None


class RayExecutor:
    """Runs units on a Ray cluster. `address`: "auto" or "HOST:PORT" joins a running one (run the driver
    on a cluster node); None follows Ray's lookup (RAY_ADDRESS, a cluster started on this machine, else a
    new local one); a process that already joined a cluster keeps it."""

    def __init__(
        self,
        address: str | None = None,
        *,
        max_retries: int = 2,
        resources: Resources | None = None,
        capacity: int | None = None,
        backlog: int = BACKLOG,
        init_kwargs: dict[str, Any] | None = None,
    ):
        if max_retries < 0:
            raise UserError(f"--max-retries {max_retries}: must be 0 or more")
        self.address, self.max_retries, self.backlog = address, max_retries, backlog
        self.resources = resources or Resources()
        self.init_kwargs = init_kwargs or {}
        self._capacity = capacity
        self._remote: Any = None

    # ---- cluster ---------------------------------------------------------------------------------
    def connect(self) -> Any:
        import ray

        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address, log_to_driver=False, configure_logging=False, **self.init_kwargs
                )
            except ConnectionError as err:
                raise UserError(f"--ray-address {self.address}: no Ray cluster there ({err})") from None
        if self._remote is None:
            self._remote = ray.remote(_run_guarded)
        return ray

    def _nodes(self) -> list[dict[str, float]]:
        return [n["Resources"] for n in self.connect().nodes() if n.get("Alive")]

    @property
    def capacity(self) -> int:
        """Units claimed at once: as many as the cluster's CPUs hold at the per-unit CPU request."""
        if self._capacity is None:
            cpus = sum(n.get("CPU", 0.0) for n in self._nodes())
            self._capacity = max(1, int(cpus // max(self.resources.num_cpus, 1e-9)))
        return self._capacity

    def resolve_device(self, device: str) -> str:
        """'auto' means cuda when the cluster has GPUs (the driver itself may have none)."""
        gpus = sum(n.get("GPU", 0.0) for n in self._nodes())
        if device == "auto":
            return "cuda" if gpus else "cpu"
        if device.startswith("cuda:"):
            raise UserError(f"--device {device}: with --executor ray use cuda (Ray gives each unit its GPU)")
        if device not in ("cpu", "cuda"):
            raise UserError(f"--device {device}: expected cpu, cuda or auto")
        if device.startswith("cuda") and not gpus:
            raise UserError(f"--device {device}: the Ray cluster has no GPU")
        return device

    # ---- running units ---------------------------------------------------------------------------
    def run(self, units: Iterable[Unit]) -> Iterator[UnitOutput]:
        """Submit every unit, then yield outputs as they arrive from whichever unit has one. If the
        driver stops early (Ctrl-C), the units still running are cancelled: what arrived is stored."""
        ray = self.connect()
        flying: dict[Any, _Attempt] = {}
        try:
            for unit in units:
                yield from self._submit(_Attempt(unit), flying)
            while flying:
                yield from self._next_output(ray, flying)
        finally:
            for generator in flying:
                with contextlib.suppress(Exception):  # already finished or its node gone: nothing to stop
                    ray.cancel(generator, force=True)

    def _next_output(self, ray: Any, flying: dict[Any, _Attempt]) -> Iterator[UnitOutput]:
        """The next output of whichever unit has one ready (or its retry, or its failure)."""
        (generator,), _ = ray.wait(list(flying), num_returns=1)
        attempt = flying.pop(generator)
        try:
            output = ray.get(next(generator))
        except StopIteration:
            return
        except _worker_died_errors() as error:
            yield from self._retry(attempt, error, flying)
            return
        except ray.exceptions.RayTaskError as error:  # outside the guard: e.g. the unit would not unpickle
            yield from _fail(attempt, cause_of(error.cause or error), str(error))
            return
        attempt.track(output)
        flying[generator] = attempt
        yield output

    def _submit(self, attempt: _Attempt, flying: dict[Any, _Attempt]) -> Iterator[UnitOutput]:
        """Start the attempt with its resources, or fail it at once if no node could ever hold it."""
        model = attempt.unit.model
        options = model_resources(model.ref, model.load.dtype, model.load.device, self.resources)
        if (why := self._unplaceable(options)) is not None:
            yield from _fail(attempt, why, "", user_error=True)
            return
        detail = ", ".join(f"{k}={v}" for k, v in options.items() if k != "memory")
        memory, how = estimate_memory(model.ref, model.load.dtype, model.load.device, self.resources)
        yield UnitLog(
            attempt.unit.model.model_key,
            f"submitted to Ray: {detail}, memory={memory / 2**30:.2f} GiB ({how})",
        )
        # Ray's own retries stay off: the driver retries, and only for what did not come back.
        task = self._remote.options(
            num_returns="streaming",
            max_retries=0,
            retry_exceptions=False,
            _generator_backpressure_num_objects=self.backlog,
            **options,
        )
        flying[task.remote(attempt.unit, attempt.attempt)] = attempt

    def _unplaceable(self, options: dict[str, float]) -> str | None:
        """Ray waits forever for a task no node can hold; say so instead."""
        nodes = self._nodes()
        for name, key in (("num_cpus", "CPU"), ("num_gpus", "GPU"), ("memory", "memory")):
            want = options.get(name) or 0
            have = max((n.get(key, 0.0) for n in nodes), default=0.0)
            if want > have:
                unit = "GiB" if key == "memory" else key
                scale = 2**30 if key == "memory" else 1
                flag = {"CPU": "--ray-cpus", "GPU": "--ray-gpus", "memory": "--ray-memory-gb"}[key]
                return (
                    f"needs {want / scale:.2f} {unit} per unit but the largest Ray node offers "
                    f"{have / scale:.2f}; set {flag}"
                )
        return None

    def _retry(
        self, attempt: _Attempt, error: BaseException, flying: dict[Any, _Attempt]
    ) -> Iterator[UnitOutput]:
        key, cause = attempt.unit.model.model_key, cause_of(error)
        rest = attempt.remainder()
        if rest is None:
            yield UnitLog(key, f"worker lost after its last result ({cause}); nothing left to redo")
            return
        if attempt.attempt > self.max_retries:
            yield from _fail(
                attempt,
                f"worker died {attempt.attempt} times (retries: {self.max_retries}); last: {cause}",
                str(error),
            )
            return
        left = sum(len(t.items) for t in rest.tasks)
        yield UnitLog(
            key,
            f"attempt {attempt.attempt}: worker died ({cause}); retrying the {left} items not yet "
            f"received ({attempt.attempt} of {self.max_retries} retries)",
            notice=True,
        )
        yield from self._submit(_Attempt(rest, attempt.attempt + 1), flying)

    # ---- whole jobs (training runs, benchmarks) ---------------------------------------------------
    def map(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Each job a Ray task with its resources; results in the order they finish. Ray re-runs a job
        whose worker died up to `max_retries` times; the job's own errors come back as failed results."""
        ray = self.connect()
        remote = ray.remote(call_guarded)
        flying = {}
        for job in jobs:
            options = {"num_cpus": job.num_cpus, "num_gpus": job.num_gpus}
            if job.memory_bytes:
                options["memory"] = job.memory_bytes
            if (why := self._unplaceable(options)) is not None:
                yield JobResult(job.name, failure=Failure(why, user_error=True))
                continue
            ref = remote.options(max_retries=self.max_retries, retry_exceptions=False, **options).remote(
                job.name, job.fn, job.args
            )
            flying[ref] = job
        while flying:
            (ref,), _ = ray.wait(list(flying), num_returns=1)
            job = flying.pop(ref)
            try:
                yield ray.get(ref)
            except _worker_died_errors() as error:
                yield JobResult(job.name, failure=Failure(
                    f"worker died {self.max_retries + 1} times; last: {cause_of(error)}", str(error),
                    attempts=self.max_retries + 1))
            except ray.exceptions.RayTaskError as error:
                yield JobResult(job.name, failure=Failure(cause_of(error.cause or error), str(error)))


def _fail(attempt: _Attempt, cause: str, detail: str, user_error: bool = False) -> Iterator[UnitOutput]:
    """The unit's last log lines, then its failure (reported once, in the run's summary)."""
    key = attempt.unit.model.model_key
    yield UnitLog(key, f"failed: {cause}\n{detail}".rstrip())
    yield UnitFailed(model_key=key, cause=cause, detail=detail, user_error=user_error, retriable=not user_error,
                     attempts=attempt.attempt)
