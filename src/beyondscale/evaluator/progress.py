"""Progress bars for an evaluation, kept in step with the store (other processes write too)."""

from __future__ import annotations

from typing import Any


def progress_bars(enabled: bool) -> Any:
    """A rich progress display on stderr (disabled: nothing printed)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not enabled, transient=False,
    )



class PairBars:
    """One progress bar per (model, task), kept in step with the store (other processes write too)."""

    def __init__(self, db: Any, progress: Any, jobs: list[Any], tasks: list[Any]):
        self.db, self.progress = db, progress
        self.pairs = [(j, t) for j in jobs for t in tasks]
        self.total = progress.add_task("all units", total=sum(len(t.items) for _, t in self.pairs)) \
            if len(self.pairs) > 1 else None
        self.bars = {(j.model_key, t.task_key): progress.add_task(f"{j.ref.name} · {t.task}", total=len(t.items))
                     for j, t in self.pairs}
        self.sync()

    def sync(self) -> None:
        total = 0
        for job, task in self.pairs:
            done = len(self.db.done_item_keys(job.model_key, task.task_key) & set(task.item_keys))
            self.progress.update(self.bars[(job.model_key, task.task_key)], completed=done)
            total += done
        if self.total is not None:
            self.progress.update(self.total, completed=total)

    def advance(self, model_key: str, task_key: str, n: int) -> None:
        self.progress.advance(self.bars[(model_key, task_key)], n)
        if self.total is not None:
            self.progress.advance(self.total, n)
