"""The study's analysis and report: the store's analysis of every model, plus the study's own sections.

The report's own sections (verdict, leaderboard, returns, paired tests, Pareto, calibration,
efficiency) come from `results.analyze` over the study's models and tasks; the study adds its sections
(`results.report`'s `sections`), and its conclusions (`conclude.py`, typed findings worded by
`analysis.wording`) go first in the verdict.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.analysis.types import Analysis
from beyondscale.analysis.wording import words
from beyondscale.interpret.results import probe_frame
from beyondscale.lab.sweep import TrainedLadder
from beyondscale.quickstart.conclude import Conclusions, conclude
from beyondscale.quickstart.spec import StudySpec
from beyondscale.quickstart.stages import CorpusStage, CurationStage, EvaluationStage
from beyondscale.results import analyze, report
from beyondscale.store import Frames

__all__ = ["analyze_study", "study_sections", "write_study_report"]

PRIMARY = "heldout_source_bpb"
BUDGET_RULE = ("rungs first, up to 6, since 4 sizes leave the law's intervals open; then items, up to what a paired "
               "test needs for 80% power at half a standard deviation; then tokens with what the clock leaves")


def analyze_study(spec: StudySpec, corpus: CorpusStage, ladder: TrainedLadder,
                  evaluation: EvaluationStage) -> tuple[Analysis, Frames, Conclusions]:
    """The store's analysis over this study's models and tasks, with the study's conclusions first."""
    analysis, frames = analyze(spec.store, models=sorted(set(evaluation.keys.values())), tasks=sorted(corpus.tasks),
                               primary=PRIMARY)
    found = conclude(spec.store, ladder, evaluation, frames)
    first = found.findings()
    analysis = dataclasses.replace(analysis, findings=[*first, *analysis.findings],
                                   verdict=[*words(first), *analysis.verdict])
    return analysis, frames, found


def _worth_frame(f: Conclusions) -> pd.DataFrame:
    rows = []
    for w in f.worth:
        size = w.size_equivalent or (math.nan, math.nan, math.nan)
        rows.append({"alternative": w.name, "kind": w.kind, "params_active": w.params_active,
                     "dense_compute_multiplier": w.multiplier, "ci_low": w.low, "ci_high": w.high,
                     "extrapolated": w.extrapolated, "wall_time_vs_matched_dense": w.wall_ratio,
                     "heldout_bpb": w.heldout, "dense_params_same_bpb": size[0], "dense_params_low": size[1],
                     "dense_params_high": size[2]})
    return pd.DataFrame(rows)


def _law_frame(f: Conclusions) -> pd.DataFrame:
    law = f.law
    rows = [{"parameter": name, "value": getattr(law, name), "ci_low": law.ci.get(name, (None, None))[0],
             "ci_high": law.ci.get(name, (None, None))[1]} for name in ("E", "A", "alpha")]
    return pd.DataFrame(rows)


def _placement_frame(f: Conclusions) -> pd.DataFrame:
    return pd.DataFrame([{"model": p.name, "params_total": p.params, "heldout_bpb": p.value, "law_predicts": p.predicted,
                          "law_low": p.low, "law_high": p.high, "times_largest_rung": p.beyond}
                         for p in f.placements])


def _routing_frame(store: str, ladder: TrainedLadder, evaluation: EvaluationStage) -> pd.DataFrame:
    frame = probe_frame(store, "routing")
    keys = {evaluation.keys.get(r.name) for r in ladder.rungs if r.kind == "moe"}
    rows = []
    for _, r in frame[frame["model_key"].isin(keys)].iterrows():
        for layer in r["summary"]["layers"]:
            rows.append({"model": r["model_name"], "layer": layer["layer"],
                         "load_per_expert": " ".join(f"{x:.2f}" for x in layer["load"]),
                         "router_entropy": layer["router_entropy"], "load_entropy": layer["load_entropy"],
                         "max_entropy": layer["max_entropy"], "imbalance": layer["imbalance"]})
    return pd.DataFrame(rows)


def _probe_frame(f: Conclusions) -> pd.DataFrame:
    cols = ["model", "params_total", "params_active", "prediction_depth", "relative_prediction_depth",
            "counterfactual_mean_abs_attribute_gap", "routing_mean_imbalance"]
    return f.probes[[c for c in cols if c in f.probes]] if not f.probes.empty else pd.DataFrame()


def study_sections(spec: StudySpec, corpus: CorpusStage, curation: CurationStage, ladder: TrainedLadder,
                   evaluation: EvaluationStage, f: Conclusions, budget: str | None = None) -> list[dict[str, Any]]:
    """The study's own sections; `budget` is how --budget-minutes split the minutes (budget.split_line)."""
    c, cur = corpus.summary, curation.summary
    split = (f" How the budget was split ({BUDGET_RULE}): {budget}; minutes, each part measured on this machine "
             "at the start of the run or labelled an estimate.") if budget else ""
    sections = [
        {"title": "The study: corpus, curation and the trained ladder",
         "text": f"Corpus: {c['pool_files']} files ({c['pool_bytes']:,} bytes) of {c['source']} in the training pool "
                 f"(every 10th validates), {c['test_files']} files held out for testing ({c['heldout_docs']} scored). "
                 f"Curation ({', '.join(cur['rules'])} + MinHash dedup + quality scorer) kept {cur['kept']} of "
                 f"{cur['total']} files. Every model of the ladder trained on {spec.plan.tokens:,} tokens.{split}",
         "frames": {"trained models (val_loss: nats per token on the shared validation files; heldout_bpb: "
                    "bits per byte on the test files)": f.points}},
    ]
    if f.law is not None:
        sections.append({"title": "Returns over the ladder: the fitted law",
                         "text": "bpb(N) = E + A·N^-alpha fitted to the dense rungs' held-out bits per byte against "
                                 "parameters (least squares, profile-t intervals; see Methods).",
                         "frames": {"law": _law_frame(f)}})
    if f.worth or f.worth_note:
        sections.append({"title": "What the MoE and curated data are worth in dense compute",
                         "text": f.worth_note or "Multiplier = dense training FLOPs the ladder's loss-vs-FLOPs fit "
                                 "needs to reach the alternative's validation loss, divided by the FLOPs the "
                                 "alternative used; above 1 it beat scaling the dense model. The interval inverts "
                                 "the fit's profile-t band.",
                         "frames": {"multipliers": _worth_frame(f)}})
    if f.placements:
        sections.append({"title": "The real models against the ladder's curve",
                         "text": "Each real model's held-out bits per byte beside what the ladder's law predicts at "
                                 "its size: an extrapolation far beyond the ladder, and the real models were trained "
                                 "on other data with other tokenizers (bits per byte compares across tokenizers).",
                         "frames": {"placement": _placement_frame(f)}})
    probe_frame = _probe_frame(f)
    if not probe_frame.empty:
        sections.append({"title": "Bias and prediction depth against size",
                         "text": "Prediction depth: first layer from which the logit lens's top-1 stays the final "
                                 "top-1, on held-out source. Counterfactual gap: mean |log-likelihood gap| between "
                                 "sentences that differ only in a demographic term (the packaged probe set).",
                         "frames": {"probes per model": probe_frame}})
    routing = _routing_frame(spec.store, ladder, evaluation)
    if not routing.empty:
        sections.append({"title": "The MoE's routing map", "text": "Share of routed tokens per expert and layer on a "
                         "held-out file; imbalance = max load / mean load.", "frames": {"routing": routing}})
    return sections


def write_study_report(spec: StudySpec, analysis: Analysis, frames: Frames, sections: list[dict[str, Any]],
                       budget: str | None = None) -> Path:
    """`results.report` of the study's analysis, with the study's sections in place of the store's own."""
    info: dict[str, Any] = {"study folder": str(spec.work), "budget minutes": spec.plan.budget_minutes}
    if budget:
        info["budget split"] = budget
    return report(spec.out, store=spec.store, analyzed=(analysis, frames), sections=sections,
                  title="beyondscale: what scale buys, and what else does", run_info=info)
