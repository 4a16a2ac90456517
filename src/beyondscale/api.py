"""The public Python API: the face of beyondscale. Every CLI command is a thin view of one function here.

Functions return plain data (dataclasses, dicts, pandas DataFrames) so notebooks and scripts can use
them without the CLI. This module only re-exports and composes; the work happens a floor down:
`evaluator` (evaluate, bench), `results` (runs, exports, analysis, report, fits), `lab` (curate, train,
sweep), `interpret` and `bias` (probes), `quickstart` (the whole study).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beyondscale.bias.commands import bias_bbq, bias_counterfactual, bias_crows_pairs, bias_toxicity
from beyondscale.evaluator import EvalResult, EvalSettings, PairResult, UnitFailure, bench, evaluate
from beyondscale.interpret.commands import (
    explain_attribute,
    explain_lens,
    explain_routing,
    explain_transparency,
)
from beyondscale.lab.commands import sweep, train
from beyondscale.lab.curate.command import curate, train_quality_scorer
from beyondscale.results import (
    analyze,
    export_items,
    export_run,
    fit,
    list_runs,
    load_store_frames,
    report,
    show_run,
)
from beyondscale.results.lm_eval_import import ImportSummary, import_lm_eval
from beyondscale.store import DEFAULT_STORE

__all__ = [
    "DEFAULT_STORE", "EvalResult", "EvalSettings", "PairResult", "QuickstartResult", "UnitFailure", "analyze",
    "bench", "bias_bbq", "bias_counterfactual", "bias_crows_pairs", "bias_toxicity", "curate", "evaluate",
    "explain_attribute", "explain_lens", "explain_routing", "explain_transparency", "export_items", "export_run",
    "fit", "list_runs", "load_store_frames", "quickstart", "report", "show_run", "sweep", "train",
    "train_quality_scorer", "import_lm_eval", "ImportSummary",
]


# ---- the quickstart study ------------------------------------------------------------------------
@dataclass
class QuickstartResult:
    report: Path
    run_id: str
    verdict: list[str]
    stage_seconds: dict[str, float]
    analysis: Any = None
    training_records: dict[str, Any] = field(default_factory=dict)  # the ladder's, by model name


def quickstart(*, store: str | Path = DEFAULT_STORE, out: str | Path = "report.html",
               work_dir: str | Path = "out/quickstart", budget_minutes: float | None = None, corpus: str | None = None,
               fresh: bool = False, settings: EvalSettings | None = None, show_progress: bool = True,
               say: Any = None, plan: Any = None, real_models: dict[str, str] | None = None) -> QuickstartResult:
    """`make run`: corpus -> curate -> trained ladder (dense, MoE, curated) + two real models -> eval -> probes
    -> analyze -> report. Re-running reuses the store and the checkpoints. `plan` (a quickstart.plan.StudyPlan)
    replaces the one sized from `budget_minutes`; `real_models` (name -> model spec) the two packaged models."""
    from beyondscale.quickstart.spec import study_spec  # the study loads torch: only when it runs
    from beyondscale.quickstart.study import run_study

    settings = settings or EvalSettings()
    spec = study_spec(store=store, work_dir=work_dir, out=out, budget_minutes=budget_minutes, plan=plan,
                      corpus=corpus, fresh=fresh, device=settings.device, batch_size=settings.batch_size,
                      real_models=real_models, quantize=settings.quantize, show_progress=show_progress)
    study = run_study(spec, say)
    return QuickstartResult(study.report, ",".join(study.evaluation.run_ids), list(study.analysis.verdict),
                            study.stages, study.analysis, dict(study.ladder.records))
