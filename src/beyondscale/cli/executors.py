"""Command-line options shared by `eval`, `bench` and `sweep` to choose where units run, the run's closing
summary (succeeded / skipped / failed, exit status 1 if anything failed), and `results logs`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from beyondscale._quiet_deps import setup_logging
from beyondscale.cli.flags import DEFAULT_STORE, JsonOpt, LogOpt, StoreOpt
from beyondscale.errors import UserError
from beyondscale.executors.choice import ExecutorSettings

ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this process) or ray (a Ray cluster).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster to join: auto or HOST:PORT (default: RAY_ADDRESS, else a local one).")]
MaxRetriesOpt = Annotated[int, typer.Option(
    "--max-retries", help="Ray: times a unit is re-run after its worker died (errors are never retried).")]
RayCpusOpt = Annotated[float, typer.Option("--ray-cpus", help="Ray: CPUs per unit.")]
RayGpusOpt = Annotated[float | None, typer.Option("--ray-gpus", help="Ray: GPUs per unit (default 1 on cuda).")]
RayMemoryOpt = Annotated[float | None, typer.Option(
    "--ray-memory-gb", help="Ray: memory per unit (default: estimated from the weights on disk).")]


def make_executor(kind: str, address: str | None = None, max_retries: int = 2, cpus: float = 1.0,
                  gpus: float | None = None, memory_gb: float | None = None) -> Any:
    """The executor the flags ask for; `local` never imports Ray (kept for callers of the old name)."""
    return ExecutorSettings(kind, address, max_retries, cpus, gpus, memory_gb).build()


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
    run: Annotated[str, typer.Argument(help="Run id, or 'latest'.")] = "latest",
    store: StoreOpt = DEFAULT_STORE,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only models whose name contains this.")] = None,
    paths: Annotated[bool, typer.Option("--paths/--no-paths", help="Print only the log files' paths.")] = False,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Print the unit logs of a run: where each unit ran, its warnings, retries and failures."""
    from rich.console import Console

    from beyondscale.work.logs import run_logs

    setup_logging(log_level)
    files = [f for f in run_logs(store, run) if model is None or model in f.name]
    if not files:
        raise UserError(f"--model {model}: no unit log of run {run} matches")
    if json_out:
        print(json.dumps([{"path": str(f), "text": f.read_text(encoding="utf-8")} for f in files]))
        return
    console = Console()
    for path in files:
        if paths:
            print(path)
            continue
        console.rule(path.name)
        console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False, end="")
