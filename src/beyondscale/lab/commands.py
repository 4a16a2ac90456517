"""`beyondscale train` and `beyondscale sweep` as functions of one settings object each.

`train` takes a `lab.run.TrainRequest` (its shape and optimiser settings nested); `sweep` a `SweepSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from beyondscale.executors.choice import ExecutorSettings
from beyondscale.store import DEFAULT_STORE

if TYPE_CHECKING:  # lab.run imports torch: loaded only when a model trains
    from beyondscale.lab.run import TrainRequest


def train(request: TrainRequest) -> dict[str, Any]:
    """Train one dense (Llama) or MoE (Mixtral) model into a Hugging Face folder; its training record."""
    from beyondscale.lab.run import train_model

    return train_model(request)


@dataclass(frozen=True)
class SweepSettings:
    data: str  # raw corpus: text file, JSONL file or folder
    out: str  # sweep folder (runs/, data/, sweep.json); re-running resumes
    curated: str | None = None  # a `beyondscale curate` output of the same corpus
    preset: str = "cpu"  # cpu (minutes on 2 cores) or gpu (a single GPU, hours)
    tokens: list[int] | None = None  # training tokens per rung; several: an L(N, D) ladder
    tasks: list[str] | None = None  # extra tasks every model is evaluated on
    device: str = "auto"
    store: str = DEFAULT_STORE
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    show_progress: bool = True


def sweep(settings: SweepSettings) -> dict[str, Any]:
    """Dense ladder, MoE at a rung's active size, raw vs curated, a distilled rung; what each alternative is
    worth in dense compute. Writes OUT/sweep.json and returns the same document."""
    from beyondscale.lab.sweep import run_sweep

    return run_sweep(settings.data, settings.out, preset=settings.preset, curated=settings.curated,
                     tasks=settings.tasks, tokens=settings.tokens, store=settings.store, device=settings.device,
                     show_progress=settings.show_progress, executor=settings.executor.build())
