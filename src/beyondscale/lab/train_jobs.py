"""Training runs as jobs: a ladder's runs on an executor (Ray: one task per run, in parallel), the
store written by the driver alone.

A run trains into its own folder (on a filesystem every worker sees) and returns its training record;
the driver then writes the record into the store. Runs that learn from a teacher wait for the phase
that trains it. A retried run (its worker died) continues from its last checkpoint, as a re-run sweep
does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from beyondscale.executors.jobs import Job, map_jobs, raise_failures
from beyondscale.executors.resources import Resources
from beyondscale.store.training import TrainingRecord


def train_job(req: Any) -> TrainingRecord | None:
    """On a worker: train with no store (the driver writes it) and no progress bar (no terminal there)."""
    from beyondscale.lab.run import train_model

    return train_model(replace(req, store=None, show_progress=False))


def phases(requests: dict[str, Any], teachers: dict[str, str | None]) -> list[list[str]]:
    """Runs in order of need: a run is in the phase after its teacher's (teachers trained in the ladder)."""
    depth: dict[str, int] = {}

    def level(name: str, seen: tuple[str, ...] = ()) -> int:
        if name not in depth:
            teacher = teachers.get(name)
            if teacher in seen:
                raise ValueError(f"training runs teach each other in a cycle: {' -> '.join((*seen, name))}")
            depth[name] = 0 if teacher not in requests else level(teacher, (*seen, name)) + 1
        return depth[name]

    for name in requests:
        level(name)
    return [[n for n in requests if depth[n] == d] for d in range(max(depth.values(), default=-1) + 1)]


def train_all(
    requests: dict[str, Any], teachers: dict[str, str | None], executor: Any, store: str | None
) -> dict[str, TrainingRecord]:
    """Train every request (name -> lab.run.TrainRequest) and return name -> training record."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from beyondscale.lab.record import store_record

    records: dict[str, TrainingRecord] = {}
    show = any(getattr(r, "show_progress", False) for r in requests.values())
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
    ) as progress:
        bar = progress.add_task("training runs", total=len(requests))
        for phase in phases(requests, teachers):
            results = []
            for result in map_jobs(executor, [_job(name, requests[name], executor) for name in phase]):
                results.append(result)
                progress.advance(bar)
                progress.console.print(
                    f"{result.name}: "
                    + (_done_line(result.value) if result.ok else f"failed: {result.failure.cause}"),
                    highlight=False,
                    markup=False,
                )
            raise_failures(results, "training")  # a later phase needs this one's models
            for result in results:
                record = result.value
                if store and record is not None:
                    record = replace(record, model_key=store_record(store, Path(record.out), record))
                records[result.name] = record
    return records


def _job(name: str, req: Any, executor: Any) -> Job:
    resources = executor.resources if executor is not None else Resources()
    memory_gb = resources.memory_gb
    return Job(
        name,
        train_job,
        (req,),
        num_cpus=resources.num_cpus,
        num_gpus=_gpus(req, resources),
        memory_bytes=int(memory_gb * 2**30) if memory_gb else None,
    )


def _done_line(record: TrainingRecord | None) -> str:
    if not record:
        return "stopped early"
    return f"trained, validation loss {record['val_loss']:.4f}, {record['wall_s']:.1f} s"


def _gpus(req: Any, resources: Resources) -> float:
    if resources.num_gpus is not None:
        return float(resources.num_gpus)
    return 1.0 if str(req.device).startswith("cuda") else 0.0
