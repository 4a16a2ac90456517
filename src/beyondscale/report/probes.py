"""Interpretability and responsibility sections for the report, from the probe results in the store.

`report_sections(store)` returns dicts for `report.render`'s `extra_sections` hook (title, text,
frames); `probe_vs_size(store)` is one row per model with each probe's headline number beside the
model's size facts, for plots against size ("bias per unit of capability"). Frames hold model and
data strings as plain values: the report's table renderer escapes them; `sections_html` escapes
them itself for a standalone page.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.store import Store
from beyondscale.store.frames import mean_accuracy, model_sizes
from beyondscale.store.probes import probe_frame

HEADLINES = {  # probe -> (column, how to read it from the summary)
    "logit_lens": (("prediction_depth", lambda s: s["prediction_depth"]),
                   ("relative_prediction_depth", lambda s: s["prediction_depth"] / s["n_layers"])),
    "crows_pairs": (("crows_pct_stereotype", lambda s: s["pct_stereotype"]),
                    ("crows_likelihood_diff", lambda s: s["likelihood_diff"])),
    "bbq": (("bbq_acc", lambda s: s["acc"]), ("bbq_s_dis", lambda s: s["disamb_bias_score"]),
            ("bbq_s_amb", lambda s: s["amb_bias_score"])),
    "counterfactual": (("counterfactual_mean_abs_attribute_gap", lambda s: _mean_abs_gap(s)),),
    "transparency": (("transparency_checklist_score", lambda s: s["score"]),),
    "routing": (("routing_mean_imbalance", lambda s: sum(r["imbalance"] for r in s["layers"]) / len(s["layers"])),),
}


def _mean_abs_gap(summary: dict[str, Any]) -> float | None:
    gaps = [abs(t["attribute_gap"]["mean"]) for axis in summary["per_axis"].values()
            for t in axis["terms"].values() if t["attribute_gap"].get("mean") is not None]
    return sum(gaps) / len(gaps) if gaps else None


def _models(store: str | Path) -> pd.DataFrame:
    with Store(store) as db:
        return model_sizes(db)


def capability(store: str | Path) -> pd.DataFrame:
    """Per model: mean `acc` over the tasks it was evaluated on (the quality axis for bias per capability)."""
    with Store(store) as db:
        found = mean_accuracy(db)
    return found.rename(columns={"mean_acc": "capability_mean_acc", "n_tasks": "capability_n_tasks"})


def probe_vs_size(store: str | Path) -> pd.DataFrame:
    """One row per model: the latest result of each probe (all data sets averaged) beside its size facts."""
    probes = probe_frame(store)
    values: dict[str, dict[str, Any]] = {}
    for probe, group in (probes.groupby("probe") if len(probes) else []):
        for col, read in HEADLINES.get(probe, ()):
            for key, rows in group.groupby("model_key"):
                got = [v for v in (_safe(read, s) for s in rows["summary"]) if v is not None]
                values.setdefault(key, {"model_key": key, "name": rows["model_name"].iloc[0]})[col] = (
                    sum(got) / len(got) if got else None)
    frame = pd.DataFrame(list(values.values()))
    if frame.empty:
        return frame
    merged = frame.merge(_models(store), on="model_key", how="left").merge(capability(store), on="model_key",
                                                                          how="left")
    merged["model"] = merged["model"].fillna(merged["name"])
    return merged.drop(columns=["name"])


def _safe(read: Any, summary: dict[str, Any]) -> float | None:
    try:
        value = read(summary)
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return None if value is None or value != value else float(value)


def _lens_curves(probes: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in probes[probes["probe"] == "logit_lens"].iterrows():
        for layer in r["summary"]["layers"]:
            rows.append({"model": r["model_name"], **layer})
    return pd.DataFrame(rows)


def report_sections(store: str | Path) -> list[dict[str, Any]]:
    """Sections for report.render(extra_sections=...): empty when no probe has been run."""
    probes = probe_frame(store)
    if probes.empty:
        return []
    summary = probe_vs_size(store)
    sections = [{"title": "Interpretability and responsibility",
                 "text": "Probe results per model beside its size. Prediction depth: first layer from which the "
                         "logit lens's top-1 stays the final top-1 (averaged over positions). CrowS-Pairs and BBQ "
                         "are scored as lm-evaluation-harness scores them. The transparency checklist is inspired "
                         "by the Foundation Model Transparency Index; it is not an FMTI score.",
                 "frames": {"headline per model": summary}, "figures": probe_figures(store)}]
    curves = _lens_curves(probes)
    if not curves.empty:
        sections.append({"title": "Logit lens per layer", "text": "KL(p_final || p_layer) in nats; layer 0 is the "
                         "embedding output.", "frames": {"per-layer curves": curves}})
    items = [{"model": r["model_name"], **i} for _, r in probes[probes["probe"] == "transparency"].iterrows()
             for i in r["summary"]["items"]]
    if items:
        sections.append({"title": "Transparency checklist", "text": "Each item met or not, with the evidence found.",
                         "frames": {"items": pd.DataFrame(items)}})
    return sections


def sections_html(sections: list[dict[str, Any]]) -> str:
    """The same sections as a standalone HTML fragment (every value escaped)."""
    parts = []
    for sec in sections:
        parts.append(f"<section><h2>{escape(str(sec['title']))}</h2><p>{escape(str(sec.get('text', '')))}</p>")
        for caption, frame in sec.get("frames", {}).items():
            head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
            body = "".join("<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in row) + "</tr>"
                           for row in frame.itertuples(index=False))
            parts.append(f"<table><caption>{escape(str(caption))}</caption><tr>{head}</tr>{body}</table>")
        parts.append("</section>")
    return "".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


AXES = (("params_total", "parameters"), ("params_active", "active parameters per token"),
        ("training_flops", "training FLOPs"), ("capability_mean_acc", "mean accuracy over evaluated tasks"))


def probe_figures(store: str | Path) -> list[Any]:
    """Plotly scatter plots: each probe headline against each size axis that has values (log x for sizes)."""
    import plotly.graph_objects as go

    frame = probe_vs_size(store)
    figs = []
    if frame.empty:
        return figs
    metrics = [c for cols in HEADLINES.values() for c, _ in cols if c in frame and frame[c].notna().any()]
    for metric in metrics:
        for axis, label in AXES:
            data = frame[[axis, metric, "model"]].dropna() if axis in frame else pd.DataFrame()
            if len(data) < 1:
                continue
            names = [escape(str(name), quote=False) for name in data["model"]]  # plotly renders HTML
            fig = go.Figure(go.Scatter(x=data[axis], y=data[metric], mode="markers+text", text=names,
                                       textposition="top center"))
            fig.update_layout(title=f"{metric} against {label}", xaxis_title=label, yaxis_title=metric,
                              xaxis_type="log" if axis != "capability_mean_acc" else "linear")
            figs.append(fig)
    return figs
