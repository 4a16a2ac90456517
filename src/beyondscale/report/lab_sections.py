"""The trained ladder's sections for the report (`extra_sections` hook), from the store's lab records.

`lab_sections(store)` returns [] when the store holds no lab runs. Frames hold record strings (model
folder names, data variants, teacher paths) as plain values: the report's table renderers escape them;
figure text goes through `figures.e` because plotly renders a subset of HTML.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.analysis.ladder import (
    Ladder,
    LadderSet,
    expert_table,
    fit_band,
    fit_table,
    ladder_findings,
    read_ladder,
)
from beyondscale.analysis.types import Analysis
from beyondscale.analysis.wording import words
from beyondscale.report import figures as F

__all__ = ["lab_only", "lab_sections", "ladder_sections", "with_ladder"]

COLORS = {"dense": F.INK, "moe": "#db2777", "curated": "#059669", "distilled": "#d97706"}
RUN_TABLE = ["model", "kind", "arch", "data_variant", "teacher", "params_total", "params_active", "tokens",
             "train_flops", "val_loss", "train_loss", "generalisation_gap", "wall_s", "matched_dense"]


def lab_sections(store: str | Path, *, inference_tokens: float | None = None) -> list[dict[str, Any]]:
    """Sections for report.render(extra_sections=...): [] when no model was trained into this store.
    `inference_tokens`: served tokens for the inference-aware optimum (default: an assumed multiple)."""
    return ladder_sections(read_ladder(store, inference_tokens=inference_tokens))


def lab_only() -> Analysis:
    """The analysis of a store whose models were trained but not evaluated: nothing but a note."""
    return Analysis(notes=["No evaluated results match: only the trained ladder's records are shown "
                           "(`beyondscale eval` or `sweep` evaluates the models)."])


def with_ladder(analysis: Analysis, ladder: Ladder) -> Analysis:
    """The analysis with the ladder's findings first in its verdict (typed, so every format words them alike);
    notes say which runs were analysed apart."""
    found = ladder_findings(ladder)
    if not found:
        return analysis
    return dataclasses.replace(analysis, findings=[*found, *analysis.findings],
                               verdict=[*words(found), *analysis.verdict], notes=[*analysis.notes, *ladder.notes])


def ladder_sections(ladder: Ladder) -> list[dict[str, Any]]:
    if ladder.empty:
        return []
    sections: list[dict[str, Any]] = []
    for index, s in enumerate(ladder.sets):
        suffix = "" if len(ladder.sets) == 1 else f" (validation set {index + 1}: {s.val_set})"
        sections += [_curve_section(s, ladder, suffix, ladder.notes if index == 0 else []),
                     _worth_section(s, suffix), _gap_section(s, suffix)]
        if s.nd is not None:
            sections.append(_nd_section(s, suffix))
    experts = expert_table(ladder.expert_load)
    if not experts.empty:
        sections.append({"title": "Expert load per layer (MoE runs)",
                         "text": "Share of routed token-to-expert assignments each expert received during "
                                 "training, per layer; entropy normalised to [0, 1] (1 = perfectly even), "
                                 "imbalance = the busiest expert's share over the mean share.",
                         "frames": {"expert load": experts}, "figures": _load_figures(ladder.expert_load)})
    return sections


# ------------------------------------------------------------------------------------------ sections


def _curve_section(s: LadderSet, ladder: Ladder, suffix: str, notes: list[str]) -> dict[str, Any]:
    text = ("Every run trained into this store that validates on this set: validation loss in nats per token "
            "against training FLOPs (counted as the training record says: 3 x forward, experts per routed "
            "token, teacher passes included). The dense baseline (dense runs from scratch on the set's most "
            "used data) is fitted with L(C) = E + A·C^-alpha (least squares, profile-t intervals for "
            "the band and the constants: see Methods).")
    if s.note:
        text += f" No fit: {s.note}."
    if s.lc_tokens is not None:
        text += (f" The dense baseline trained at several token budgets: the L(C) fit and the multipliers use its "
                 f"rungs at {s.lc_tokens:,.0f} tokens (the alternatives' budget), where only size varies; the "
                 "section on L(N, D) uses them all.")
    if s.nd_note:
        text += f" {s.nd_note[0].upper()}{s.nd_note[1:]}."
    text += "".join(" " + n for n in notes)
    frames = {"runs": s.runs[[c for c in RUN_TABLE if c in s.runs]]}
    if s.fit is not None:
        frames["fit of the dense baseline: L(C) = E + A·C^-alpha"] = fit_table(s)
    figures = [_ladder_figure(s)]
    curves = ladder.curves[ladder.curves["model_key"].isin(set(s.runs["model_key"]))] if not ladder.curves.empty \
        else ladder.curves
    if not curves.empty:
        figures.append(_training_figure(curves, s))
    return {"title": "The trained ladder: validation loss against training FLOPs" + suffix, "text": text,
            "frames": frames, "figures": figures}


def _worth_section(s: LadderSet, suffix: str) -> dict[str, Any]:
    title = "What each alternative is worth in dense compute" + suffix
    if s.worth.empty:
        why = s.note or "every run here is part of the dense baseline"
        return {"title": title, "text": f"No multipliers: {why}."}
    text = ("Multiplier = the dense training FLOPs the baseline's fit needs to reach the alternative's validation "
            "loss, divided by the FLOPs the alternative used: above 1× it beat making the dense model bigger, 2× "
            "means it did what twice the dense compute would have done. The 95% interval inverts the fit's "
            "profile-t band (with the alternative's own loss noise); 'extrapolated' means the dense FLOPs lie outside the ladder's range (believe it "
            "less). Wall time is the alternative's over its matched dense rung's (nearest active parameters).")
    table = s.worth.rename(columns={"name": "alternative", "loss": "val_loss", "flops": "train_flops",
                                    "dense_flops": "dense_flops_same_loss", "multiplier": "dense_compute_multiplier",
                                    "low": "ci_low", "high": "ci_high", "wall_ratio": "wall_time_vs_matched_dense"})
    table = table[["alternative", "kind", "matched_dense", "val_loss", "train_flops", "dense_flops_same_loss",
                   "dense_compute_multiplier", "ci_low", "ci_high", "extrapolated", "wall_time_vs_matched_dense"]]
    return {"title": title, "text": text, "frames": {"multipliers (95% profile-t CI)": table},
            "figures": [_worth_figure(s.worth)]}


def _gap_section(s: LadderSet, suffix: str) -> dict[str, Any]:
    cols = ["model", "kind", "params_total", "params_active", "train_loss", "val_loss", "generalisation_gap",
            "memorised", "memorisation_samples", "memorised_share"]
    frame = s.runs[[c for c in cols if c in s.runs]]
    has_mem = frame["memorised_share"].notna().any()
    if not has_mem:
        frame = frame.drop(columns=["memorised", "memorisation_samples", "memorised_share"])
    text = ("Generalisation gap = validation loss − training loss (the training loss is measured after training "
            "on as many windows as validation, spread over the training tokens). ")
    text += ("Exact memorisation (Carlini et al. 2022): the share of sampled training sequences whose 32-token "
             "continuation the model reproduces greedily from a 32-token prefix." if has_mem else
             "No exact-memorisation check is stored for these runs.")
    figures = [_against_params(s.runs, "generalisation_gap", "generalisation gap (nats/token)")]
    if has_mem:
        figures.append(_against_params(s.runs, "memorised_share", "share exactly memorised"))
    return {"title": "Generalisation gap and memorisation against size" + suffix, "text": text,
            "frames": {"per run": frame}, "figures": figures}


def _nd_section(s: LadderSet, suffix: str) -> dict[str, Any]:
    from beyondscale.analysis.ladder_nd import INFERENCE_MULTIPLE

    nd = s.nd
    served = (f"{nd.inference_tokens:.3g} served tokens (an assumption: {INFERENCE_MULTIPLE:g}× the rung's training "
              "tokens)" if nd.inference_assumed else f"{nd.inference_tokens:.3g} served tokens (given)")
    text = (f"The dense baseline trained {nd.sizes} sizes at {nd.budgets} token budgets ({nd.n_points} runs), so it "
            "fits L(N, D) = E + A·N^-alpha + B·D^-beta (as `beyondscale fit` does: least squares, "
            "profile-t intervals), with N the total parameters (embeddings "
            "included, as Hoffmann et al. 2022 count them) and D the training tokens. The compute-optimal "
            "allocation is Chinchilla's closed form for C = 6·N·D over the ladder's compute range (the records' "
            "own FLOPs also count attention); its intervals are the profile-t region's range of N_opt. The inference-aware "
            f"optimum (Sardana et al. 2024) minimises 6·N·D_train + 2·N·D_inference at the validation loss of "
            f"{nd.best} ({nd.target_loss:.4f}) for {served}, beside the Chinchilla-optimal model of the same loss. 'extrapolated': outside the sizes or token budgets the "
            "ladder measured (believe it less).")
    if nd.note:
        text += f" {nd.note[0].upper()}{nd.note[1:]}."
    ci = nd.fit.ci
    constants = pd.DataFrame([{"parameter": k, "value": v, "ci_low": ci.get(k, (math.nan,) * 2)[0],
                               "ci_high": ci.get(k, (math.nan,) * 2)[1]} for k, v in nd.constants.items()])
    frames = {"fit of the dense baseline: L(N, D) = E + A·N^-alpha + B·D^-beta": constants,
              "compute-optimal allocation (C = 6·N·D)": nd.allocation}
    if nd.inference_optimal is not None:
        frames["inference-aware optimum vs Chinchilla-optimal, same loss"] = _inference_frame(nd, s.dense)
    return {"title": "L(N, D): compute-optimal and inference-aware allocation" + suffix, "text": text,
            "frames": frames}


def _inference_frame(nd: Any, dense: pd.DataFrame) -> pd.DataFrame:
    from beyondscale.analysis.ladder_nd import outside

    rows = [{"model": what, "params": p["params"], "train_tokens": p["train_tokens"], "train_flops": p["train_flops"],
             "inference_flops": p["inference_flops"], "total_flops": p["total_flops"],
             "extrapolated": outside(dense, p["params"], p["train_tokens"])}
            for what, p in (("Chinchilla-optimal", nd.chinchilla), ("inference-aware optimum", nd.inference_optimal))]
    frame = pd.DataFrame(rows)
    frame["saved_vs_chinchilla"] = 1 - frame["total_flops"] / frame["total_flops"].iloc[0]
    return frame


# ------------------------------------------------------------------------------------------ figures


def _kind_traces(runs: pd.DataFrame, y: str, hover: str) -> list[dict[str, Any]]:
    traces = []
    for kind, g in runs.groupby("kind", sort=False):
        color = COLORS.get(str(kind)) or COLORS.get(str(kind).split("+")[0], F.GREY)
        traces.append({"type": "scatter", "mode": "markers+text", "x": list(g["_x"]), "y": F._num(g[y]),
                       "text": [F.e(m) for m in g["model"]], "textposition": "top center", "cliponaxis": False,
                       "textfont": {"size": 10, "color": "#4b5563"}, "name": F.e(kind),
                       "marker": {"color": color, "size": 9, "symbol": "circle" if kind == "dense" else "diamond"},
                       "hovertemplate": "%{text}<br>" + hover + "<extra></extra>"})
    return traces


def _figure(title: str, traces: list[dict], x_title: str, y_title: str, xs: list[float],
            log_x: bool = True) -> dict[str, Any]:
    xaxis = {"title": {"text": x_title}, **(F.log2_axis(xs) if log_x else {})}
    return {"data": traces, "layout": F._layout(title, xaxis=xaxis, yaxis={"title": {"text": y_title}}),
            "config": F._config()}


def _ladder_figure(s: LadderSet) -> dict[str, Any]:
    runs = s.runs.assign(_x=s.runs["train_flops"].astype(float))
    band = fit_band(s)
    traces = F._band_traces(band.rename(columns={"train_flops": "_x", "fit": "y_fit", "low": "y_low",
                                                 "high": "y_high"})) if not band.empty else []
    traces += _kind_traces(runs, "val_loss", "FLOPs %{x:.3s}<br>val loss %{y:.4f}")
    xs = list(runs["_x"]) + (list(band["train_flops"]) if not band.empty else [])
    return _figure("validation loss vs training FLOPs · lower is better", traces,
                   "training FLOPs (log₂ scale)", "validation loss (nats/token)", xs)


def _training_figure(curves: pd.DataFrame, s: LadderSet) -> dict[str, Any]:
    val = curves[curves["kind"] == "val"].sort_values("step")
    kinds = dict(zip(s.runs["model"], s.runs["kind"], strict=True))
    traces = [{"type": "scatter", "mode": "lines+markers", "x": F._num(g["flops"]), "y": F._num(g["loss"]),
               "name": F.e(model), "marker": {"size": 4},
               "line": {"dash": "solid" if kinds.get(model) == "dense" else "dot", "width": 1.5},
               "hovertemplate": F.e(model) + "<br>FLOPs %{x:.3s}<br>val loss %{y:.4f}<extra></extra>"}
              for model, g in val.groupby("model", sort=True)]
    xs = [x for x in F._num(val["flops"]) if x]
    return _figure("validation loss during training (dense solid, alternatives dotted)", traces,
                   "training FLOPs so far (log₂ scale)", "validation loss (nats/token)", xs)


def _worth_figure(worth: pd.DataFrame) -> dict[str, Any]:
    finite = worth[worth["multiplier"].map(lambda v: math.isfinite(v))]
    err_hi = [max(0.0, h - m) if math.isfinite(h) else 0.0 for m, h in zip(finite["multiplier"], finite["high"],
                                                                             strict=True)]
    err_lo = [max(0.0, m - lo) if math.isfinite(lo) else 0.0 for m, lo in zip(finite["multiplier"], finite["low"],
                                                                               strict=True)]
    trace = {"type": "scatter", "mode": "markers", "y": [F.e(n) for n in finite["name"]],
             "x": list(finite["multiplier"]), "marker": {"color": F.ACCENT, "size": 10}, "name": "multiplier",
             "error_x": {"type": "data", "symmetric": False, "array": err_hi, "arrayminus": err_lo},
             "hovertemplate": "%{y}: %{x:.3g}× dense compute<extra></extra>"}
    even = {"type": "scatter", "mode": "lines", "x": [1, 1], "y": [F.e(finite["name"].iloc[0]),
                                                                   F.e(finite["name"].iloc[-1])] if len(finite) else [],
            "line": {"color": F.GREY, "dash": "dash"}, "name": "1× (as good as scaling dense)", "hoverinfo": "skip"}
    layout = F._layout("worth in dense compute (95% profile-t CI)", xaxis={"title": {"text": "× dense compute"},
                                                                             "type": "log"})
    return {"data": [even, trace], "layout": layout, "config": F._config()}


def _against_params(runs: pd.DataFrame, y: str, label: str) -> dict[str, Any]:
    data = runs.dropna(subset=[y]).assign(_x=lambda d: d["params_active"].astype(float))
    return _figure(f"{label} vs active parameters", _kind_traces(data, y, "params %{x:.3s}<br>%{y:.4g}"),
                   "active parameters (log₂ scale)", label, list(data["_x"]))


def _load_figures(load: pd.DataFrame) -> list[dict[str, Any]]:
    figs = []
    for model, g in load.groupby("model", sort=True):
        grid = g.pivot_table(index="layer", columns="expert", values="load").sort_index()
        grid = grid.div(grid.sum(axis=1), axis=0)
        trace = {"type": "heatmap", "z": grid.to_numpy().tolist(), "x": [f"expert {c}" for c in grid.columns],
                 "y": [f"layer {i}" for i in grid.index], "colorscale": "Blues", "zmin": 0,
                 "hovertemplate": "%{y}, %{x}: %{z:.3f} of the tokens<extra></extra>"}
        layout = F._layout(f"{F.e(model)} · expert load per layer", showlegend=False,
                           margin={"l": 70, "r": 20, "t": 48, "b": 50})
        figs.append({"data": [trace], "layout": layout, "config": F._config()})
    return figs
