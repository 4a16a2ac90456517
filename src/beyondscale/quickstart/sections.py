"""The study's analysis and report: the store's analysis of every model, plus the study's own sections.

The report's own sections (verdict, leaderboard, returns, paired tests, Pareto, calibration,
efficiency) come from `api.analyze` over the study's models and tasks; the study adds its sections
through the report's `extra_sections` hook, and its typed findings (`findings.study_findings`, worded by
`analysis.wording`) go first in the verdict.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.quickstart.findings import StudyFindings, compute_findings, study_findings, verdict_lines
from beyondscale.quickstart.study import Study

__all__ = ["analyze_study", "study_sections", "write_study_report"]

PRIMARY = "heldout_source_bpb"


def analyze_study(study: Study) -> tuple[Any, Any]:
    """The store's analysis over this study's models and tasks, with the study's verdict lines first."""
    from beyondscale.results import analyze

    analysis, frames = analyze(study.store, models=sorted(set(study.keys.values())),
                                   tasks=sorted(study.tasks), primary=PRIMARY)
    found = compute_findings(study, frames.models)
    analysis.findings = [*study_findings(found), *analysis.findings]
    analysis.verdict = [*verdict_lines(found), *analysis.verdict]
    study.findings = found
    return analysis, frames


def _worth_frame(f: StudyFindings) -> pd.DataFrame:
    rows = []
    for w in f.worth:
        size = w.size_equivalent or (math.nan, math.nan, math.nan)
        rows.append({"alternative": w.name, "kind": w.kind, "params_active": w.params_active,
                     "dense_compute_multiplier": w.multiplier, "ci_low": w.low, "ci_high": w.high,
                     "extrapolated": w.extrapolated, "wall_time_vs_matched_dense": w.wall_ratio,
                     "heldout_bpb": w.bpb, "dense_params_same_bpb": size[0], "dense_params_low": size[1],
                     "dense_params_high": size[2]})
    return pd.DataFrame(rows)


def _law_frame(f: StudyFindings) -> pd.DataFrame:
    law = f.law
    rows = [{"parameter": name, "value": getattr(law, name), "ci_low": law.ci.get(name, (None, None))[0],
             "ci_high": law.ci.get(name, (None, None))[1]} for name in ("E", "A", "alpha")]
    return pd.DataFrame(rows)


def _placement_frame(f: StudyFindings) -> pd.DataFrame:
    return pd.DataFrame([{"model": p.name, "params_total": p.params, "heldout_bpb": p.bpb, "law_predicts": p.predicted,
                          "law_low": p.low, "law_high": p.high, "times_largest_rung": p.beyond}
                         for p in f.placements])


def _routing_frame(study: Study) -> pd.DataFrame:
    from beyondscale.interpret.results import probe_frame

    frame = probe_frame(study.store, "routing")
    keys = {study.keys.get(r.name) for r in study.rungs if r.kind == "moe"}
    rows = []
    for _, r in frame[frame["model_key"].isin(keys)].iterrows():
        for layer in r["summary"]["layers"]:
            rows.append({"model": r["model_name"], "layer": layer["layer"],
                         "load_per_expert": " ".join(f"{x:.2f}" for x in layer["load"]),
                         "router_entropy": layer["router_entropy"], "load_entropy": layer["load_entropy"],
                         "max_entropy": layer["max_entropy"], "imbalance": layer["imbalance"]})
    return pd.DataFrame(rows)


def _probe_frame(f: StudyFindings) -> pd.DataFrame:
    cols = ["model", "params_total", "params_active", "prediction_depth", "relative_prediction_depth",
            "counterfactual_mean_abs_attribute_gap", "routing_mean_imbalance"]
    return f.probes[[c for c in cols if c in f.probes]] if not f.probes.empty else pd.DataFrame()


def study_sections(study: Study, f: StudyFindings) -> list[dict[str, Any]]:
    c, cur = study.corpus, study.curation
    sections = [
        {"title": "The study: corpus, curation and the trained ladder",
         "text": f"Corpus: {c['pool_files']} files ({c['pool_bytes']:,} bytes) of {c['source']} in the training pool "
                 f"(every 10th validates), {c['test_files']} files held out for testing ({c['heldout_docs']} scored). "
                 f"Curation ({', '.join(cur['rules'])} + MinHash dedup + quality scorer) kept {cur['kept']} of "
                 f"{cur['total']} files. Every model of the ladder trained on {study.plan.tokens:,} tokens.",
         "frames": {"trained models (val_loss: nats per token on the shared validation files; heldout_bpb: "
                    "bits per byte on the test files)": f.points}},
    ]
    if f.law is not None:
        sections.append({"title": "Returns over the ladder: the fitted law",
                         "text": "bpb(N) = E + A·N^-alpha fitted to the dense rungs' held-out bits per byte against "
                                 "parameters (Huber on log loss, 1000 bootstrap refits for the intervals).",
                         "frames": {"law": _law_frame(f)}})
    if f.worth or f.worth_note:
        sections.append({"title": "What the MoE and curated data are worth in dense compute",
                         "text": f.worth_note or "Multiplier = dense training FLOPs the ladder's loss-vs-FLOPs fit "
                                 "needs to reach the alternative's validation loss, divided by the FLOPs the "
                                 "alternative used; above 1 it beat scaling the dense model. The interval inverts "
                                 "the fit's bootstrap band.",
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
    routing = _routing_frame(study)
    if not routing.empty:
        sections.append({"title": "The MoE's routing map", "text": "Share of routed tokens per expert and layer on a "
                         "held-out file; imbalance = max load / mean load.", "frames": {"routing": routing}})
    return sections


def write_study_report(study: Study, analysis: Any, frames: Any, out: Path) -> Path:
    from beyondscale.report import write_report
    from beyondscale.results import list_runs

    runs = list_runs(study.store)
    run_info = {"store": study.store, "runs": len(runs), "python": sys.version.split()[0],
                "study folder": str(study.work), "budget minutes": study.plan.budget_minutes}
    return write_report(Path(out), None, analysis, models=frames.models, scores=frames.scores,
                        efficiency=frames.efficiency, title="beyondscale: what scale buys, and what else does",
                        run_info=run_info, extra_sections=study_sections(study, study.findings))
