"""What an evaluation returns: one result per (model, task), the failures, the counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from beyondscale.errors import Failure, UserError


@dataclass
class PairResult:
    model: str
    model_key: str
    task: str
    task_key: str
    metrics: dict[str, float | None]
    n_items: int
    seconds: float
    efficiency: dict[str, Any]
    resumed_items: int = 0

    @classmethod
    def scored(cls, model: str, model_key: str, task: str, task_key: str, aggregates: dict[str, tuple],
               n_items: int, efficiency: dict[str, Any], computed: int) -> PairResult:
        """From a unit's score set: each metric with its `_stderr` beside it; `seconds` is the measured
        evaluation time, resumed pieces included."""
        metrics: dict[str, float | None] = {}
        for name, (value, stderr) in aggregates.items():
            metrics[name], metrics[f"{name}_stderr"] = value, stderr
        return cls(model, model_key, task, task_key, metrics, n_items, round(efficiency.get("seconds") or 0.0, 3),
                   efficiency, resumed_items=n_items - computed)


@dataclass(frozen=True, kw_only=True)
class UnitFailure(Failure):
    """A (model, task) pair that failed, by display name."""

    model: str
    task: str


@dataclass
class EvalResult:
    run_id: str
    store: str
    results: list[PairResult] = field(default_factory=list)
    # (model, task) pairs this run computed / found already stored (or computed by another process) / failed
    succeeded: int = 0
    skipped: int = 0
    failed: list[UnitFailure] = field(default_factory=list)

    def raise_failures(self, what: str) -> None:
        """For callers that need every pair (quickstart, sweep): one line naming each failed unit."""
        if self.failed:
            causes = "; ".join(f"{f.model} · {f.task}: {f.cause}" for f in self.failed)
            raise UserError(f"{what}: {len(self.failed)} unit(s) failed ({causes}); logs: beyondscale results "
                            f"logs {self.run_id} --store {self.store}")

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "store": self.store,
            "summary": {"succeeded": self.succeeded, "skipped": self.skipped,
                        "failed": [{k: v for k, v in asdict(f).items() if k != "detail"} for f in self.failed]},
            "results": [
                {"model": r.model, "task": r.task, "metrics": r.metrics, "n_items": r.n_items, "seconds": r.seconds,
                 "efficiency": r.efficiency}
                for r in self.results
            ],
        }
