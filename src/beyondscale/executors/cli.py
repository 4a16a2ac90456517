"""Command-line options shared by `eval`, `bench` and `sweep` to choose where units run, and the run's
closing summary (succeeded / skipped / failed, exit status 1 if anything failed)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from beyondscale.errors import UserError

ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this process) or ray (a Ray cluster).")]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to join: auto or HOST:PORT (default: RAY_ADDRESS, else a local one).",
    ),
]
MaxRetriesOpt = Annotated[
    int,
    typer.Option(
        "--max-retries", help="Ray: times a unit is re-run after its worker died (errors are never retried)."
    ),
]
RayCpusOpt = Annotated[float, typer.Option("--ray-cpus", help="Ray: CPUs per unit.")]
RayGpusOpt = Annotated[
    float | None, typer.Option("--ray-gpus", help="Ray: GPUs per unit (default 1 on cuda).")
]
RayMemoryOpt = Annotated[
    float | None,
    typer.Option(
        "--ray-memory-gb", help="Ray: memory per unit (default: estimated from the weights on disk)."
    ),
]


def make_executor(
    kind: str,
    address: str | None = None,
    max_retries: int = 2,
    cpus: float = 1.0,
    gpus: float | None = None,
    memory_gb: float | None = None,
) -> Any:
    """The executor the flags ask for; `local` never imports Ray."""
    if kind == "local":
        if address is not None:
            raise UserError("--ray-address: only with --executor ray")
        return None
    if kind != "ray":
        raise UserError(f"--executor {kind}: expected local or ray")
    if cpus <= 0 or (gpus is not None and gpus < 0) or (memory_gb is not None and memory_gb <= 0):
        raise UserError("--ray-cpus and --ray-memory-gb must be positive, --ray-gpus 0 or more")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("--executor ray: Ray is not installed (pip install 'beyondscale[ray]')") from None
    from beyondscale.executors.ray import RayExecutor
    from beyondscale.executors.resources import Resources

    return RayExecutor(address, max_retries=max_retries, resources=Resources(cpus, gpus, memory_gb))


def print_summary(console: Any, succeeded: int, skipped: int, failed: list[Any], logs_hint: str) -> int:
    """One line of counts, one line per failure with its cause; the exit status (1 if any failed)."""
    console.print(
        f"units: {succeeded} succeeded, {skipped} skipped (already stored), {len(failed)} failed",
        highlight=False,
    )
    for f in failed:
        tries = f" after {f.attempts} attempts" if f.attempts > 1 else ""
        console.print(
            f"failed: {f.model} · {f.task}{tries}: {f.cause}", highlight=False, markup=False, soft_wrap=True
        )
    if failed:
        console.print(f"unit logs: {logs_hint}", highlight=False, markup=False)
    return 1 if failed else 0


def logs_cmd(
    run: str = typer.Argument("latest", help="Run id, or 'latest'."),
    store: Annotated[str, typer.Option("--store", help="Results database (SQLite).")] = "beyondscale.db",
    model: Annotated[
        str | None, typer.Option("--model", help="Only models whose name contains this.")
    ] = None,
    paths: Annotated[bool, typer.Option("--paths", help="Print only the log files' paths.")] = False,
) -> None:
    """Print the unit logs of a run: where each unit ran, its warnings, retries and failures."""
    from rich.console import Console

    from beyondscale.work.logs import run_logs

    console = Console()
    files = [f for f in run_logs(store, run) if model is None or model in f.name]
    if not files:
        raise UserError(f"--model {model}: no unit log of run {run} matches")
    for path in files:
        if paths:
            print(path)
            continue
        console.rule(path.name)
        console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False, end="")
