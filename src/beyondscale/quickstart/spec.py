"""The study as a value: everything `make run` will do, fixed and checked before anything runs.

As HELM's `RunSpec`: a frozen description that the stages read and never change, so a mistake in any
input (a budget, a quantisation method, a batch size) stops the study before its first stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beyondscale.errors import UserError
from beyondscale.evaluator.settings import parse_batch_size
from beyondscale.models.quantize import check_method
from beyondscale.quickstart.packaged import PACKAGED_MODELS
from beyondscale.quickstart.plan import StudyPlan, plan_for

__all__ = ["StudySpec", "packaged_models", "quantize_variants", "study_spec"]


@dataclass(frozen=True)
class StudySpec:
    plan: StudyPlan
    work: Path  # the study's folder: corpus, curation, ladder (reused by the next run)
    store: str
    out: Path  # the report
    device: str  # resolved: cpu or cuda
    batch_size: int | str
    corpus: str | None  # the user's JSONL instead of the standard library
    real_models: tuple[tuple[str, str], ...]  # (name, model spec) set against the ladder
    quantize: tuple[str, ...]  # the real models' quantised variants
    fresh: bool
    show_progress: bool = True


def packaged_models() -> dict[str, str]:
    """The two real models, as model specs (`name=path/to/file.gguf`)."""
    return {name: f"{name}={entry.path()}" for name, entry in PACKAGED_MODELS.items()}


def quantize_variants(value: str | None) -> tuple[str, ...]:
    """`--quantize int8`, `int8,int4` or `none` (the default: no variants) -> the methods, checked up front."""
    methods = [check_method(v.strip()) for v in (value or "none").split(",") if v.strip()]
    return tuple(dict.fromkeys(m for m in methods if m != "none"))


def _batch_size(value: int | str) -> int | str:
    parsed = parse_batch_size(value)
    if parsed is None:
        raise UserError(f"--batch-size {value}: expected 'auto' or a positive integer")
    return parsed


def study_spec(*, store: str | Path, work_dir: str | Path, out: str | Path, budget_minutes: float | None = None,
               plan: StudyPlan | None = None, corpus: str | None = None, fresh: bool = False, device: str = "auto",
               batch_size: int | str = "auto", real_models: dict[str, str] | None = None,
               quantize: str | None = None, show_progress: bool = True) -> StudySpec:
    """The study's spec from the command's settings; every input checked here, before any stage runs.
    `real_models` (name -> model spec) replaces the two packaged models (tests pass tiny local ones)."""
    from beyondscale.models.load import resolve_device

    models = real_models if real_models is not None else packaged_models()
    return StudySpec(plan=plan or plan_for(budget_minutes), work=Path(work_dir).expanduser().resolve(),
                     store=str(store), out=Path(out), device=resolve_device(device), batch_size=_batch_size(batch_size),
                     corpus=corpus, real_models=tuple(models.items()), quantize=quantize_variants(quantize),
                     fresh=fresh, show_progress=show_progress)
