"""What a trained ladder says, from the lab records of a store (or any table of runs) alone.

Runs are compared only when they share a validation set: the same validation tokens (data and
tokenizer) scored in the same windows (context length). A loss on another set, or under another
tokenizer, is in other units, so a multiplier across sets would be meaningless; such runs are
analysed as a ladder of their own, or left out with a note saying why.

Within a set the dense baseline is every dense run trained from scratch on the set's baseline data
(the data most of those runs trained on). Everything else is an alternative, named by how it differs
(arch, data variant, distillation) and matched to the dense baseline rung nearest in active
parameters (then tokens): the MoE at the active size of a dense rung, curated data at the same shape
and tokens, a distilled rung beside the same rung from scratch. Each alternative's worth in dense
compute inverts the baseline's loss-vs-FLOPs fit (`analysis.compute_equivalent`). When the baseline
varies both size and training tokens, it also gets L(N, D) (`analysis.ladder_nd`), and its loss-vs-FLOPs
fit keeps to one budget (the alternatives', when 4+ sizes trained at it): at other budgets the same FLOPs
buy other losses, and making the dense model bigger at the alternatives' budget is what they are
measured against.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.errors import UserError
from beyondscale.store import Store
from beyondscale.store.training import training_tables

__all__ = ["Ladder", "LadderSet", "classify", "ladder_findings", "ladder_from_runs", "read_ladder", "worth"]

RUN_COLUMNS = ["model", "model_key", "kind", "arch", "data_variant", "data_hash", "teacher", "params_total",
               "params_active", "tokens", "train_flops", "context_length", "val_loss", "train_loss",
               "generalisation_gap", "memorised_share", "memorised", "memorisation_samples", "wall_s", "val_set",
               "matched_dense"]


@dataclass
class LadderSet:
    """The runs that share one validation set, and what their dense baseline says about the others."""

    val_set: str
    runs: pd.DataFrame  # RUN_COLUMNS, kind 'dense' for the baseline
    fit: Any | None = None  # FitResult of dense validation loss against training FLOPs
    span: tuple[float, float] | None = None  # the dense baseline's FLOPs range
    worth: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per alternative (Multiplier fields)
    note: str = ""  # why there is no fit or no multiplier
    nd: Any | None = None  # ladder_nd.LadderND when the dense baseline varies both N and D
    nd_note: str = ""  # why there is no L(N, D) fit
    lc_tokens: float | None = None  # when set, the L(C) fit used only the dense rungs at this token budget


    @property
    def dense(self) -> pd.DataFrame:
        return self.runs[self.runs["kind"] == "dense"]


@dataclass
class Ladder:
    """A store's trained runs, analysed; `Ladder()` is the empty one (a store with no lab runs)."""

    sets: list[LadderSet] = field(default_factory=list)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # training_curve rows with the model's name
    expert_load: pd.DataFrame = field(default_factory=pd.DataFrame)  # model, layer, expert, load
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.sets

    @property
    def main(self) -> LadderSet | None:
        """The set with a fit and the most runs (the one the verdict speaks about)."""
        return _main(self.sets)


def _main(sets: list[LadderSet]) -> LadderSet | None:
    return max(sets, key=lambda s: (s.fit is not None, len(s.runs))) if sets else None


# ------------------------------------------------------------------------------------------ the records


def _val_set(record: dict[str, Any]) -> str:
    """Validation identity: the hash of the validation tokens when recorded, else the data it came from."""
    data = record.get("data") or {}
    tokens = record.get("val_tokens_sha256")
    base = f"tokens:{tokens[:16]}" if tokens else (
        f"data:{str(data['val_data_hash'])[:16]}" if data.get("val_data_hash")
        else f"split of data:{str(data.get('data_hash'))[:16]}")
    return f"{base}, context {record.get('context_length')}"


def _run_row(row: pd.Series) -> dict[str, Any]:
    record = json.loads(row["record"]) if isinstance(row["record"], str) else {}
    mem = (record.get("checks") or {}).get("memorisation") or {}
    return {"model": Path(str(row["out"])).name, "model_key": row["model_key"], "arch": row["arch"],
            "data_variant": row["data_variant"], "data_hash": row["data_hash"], "teacher": row["teacher"],
            **{k: row[k] for k in ("params_total", "params_active", "tokens", "train_flops", "context_length",
                                   "val_loss", "train_loss", "wall_s")},
            "generalisation_gap": row["val_loss"] - row["train_loss"] if row["train_loss"] is not None else None,
            "memorised_share": mem.get("share"), "memorised": mem.get("memorised"),
            "memorisation_samples": mem.get("samples"), "val_set": _val_set(record)}


def read_ladder(store: str | Path, *, n_boot: int = 1000, seed: int = 0,
                inference_tokens: float | None = None) -> Ladder:
    """The store's lab tables (`store.training`) analysed; an empty Ladder when it holds no lab runs.
    `inference_tokens`: served tokens for the inference-aware optimum (default: an assumed multiple)."""
    if not Path(store).exists():  # no store, no records (the caller says what is missing)
        return Ladder()
    with Store(store, create=False) as db:
        tables = training_tables(db)
    runs = _unique_names(pd.DataFrame([_run_row(r) for _, r in tables.runs.iterrows()]))
    names = dict(zip(runs["model_key"], runs["model"], strict=True)) if not runs.empty else {}
    curves = tables.curve.assign(model=tables.curve["model_key"].map(names))
    load = tables.expert_load.assign(model=tables.expert_load["model_key"].map(names))
    return ladder_from_runs(runs, curves, load, n_boot=n_boot, seed=seed, inference_tokens=inference_tokens)


def _unique_names(runs: pd.DataFrame) -> pd.DataFrame:
    """Folder names label runs; two sweeps into one store repeat them, so repeated names get their key."""
    if runs.empty:
        return runs
    repeated = runs["model"].duplicated(keep=False)
    runs.loc[repeated, "model"] = runs["model"][repeated] + " (" + runs["model_key"][repeated].str[:8] + ")"
    return runs


def ladder_from_runs(runs: pd.DataFrame, curves: pd.DataFrame | None = None, expert_load: pd.DataFrame | None = None,
                     *, n_boot: int = 1000, seed: int = 0, inference_tokens: float | None = None) -> Ladder:
    """Group runs by validation set, classify each group and fit its dense baseline (L(C), and L(N, D)
    when it varies both)."""
    from beyondscale.analysis.ladder_nd import fit_nd

    curves = curves if curves is not None else pd.DataFrame()
    expert_load = expert_load if expert_load is not None else pd.DataFrame()
    if runs.empty:
        return Ladder([], curves, expert_load)
    sets = []
    for val_set, group in runs.groupby("val_set", sort=False):
        classified = classify(group.reset_index(drop=True))
        lc_tokens = _lc_budget(classified)
        in_lc = (classified["kind"] != "dense") | (lc_tokens is None) | (classified["tokens"] == lc_tokens)
        fit, span, table, note = worth(classified[in_lc], n_boot=n_boot, seed=seed)
        dense = classified[classified["kind"] == "dense"]
        nd, nd_note = fit_nd(dense, inference_tokens=inference_tokens, n_boot=n_boot, seed=seed) \
            if len(dense) else (None, "no L(N, D) fit: no dense baseline")
        sets.append(LadderSet(str(val_set), classified, fit, span, table, note, nd, nd_note, lc_tokens))
    sets.sort(key=lambda s: -len(s.runs))
    return Ladder(sets, curves, expert_load, _set_notes(sets))


def _lc_budget(runs: pd.DataFrame) -> float | None:
    """The one token budget the L(C) fit keeps to when the dense baseline has several: the alternatives' most
    common budget (else the dense baseline's most common, then largest), if 4+ sizes trained at it."""
    dense, alts = runs[runs["kind"] == "dense"], runs[runs["kind"] != "dense"]
    if dense["tokens"].nunique() < 2:
        return None
    sizes = dense.groupby("tokens")["params_total"].nunique()
    pool = alts["tokens"][alts["tokens"].isin(sizes.index)]
    counts = (pool if len(pool) else dense["tokens"]).value_counts()
    budget = max(counts.index, key=lambda t: (counts[t], t))
    return float(budget) if sizes[budget] >= 4 else None


def _set_notes(sets: list[LadderSet]) -> list[str]:
    if len(sets) < 2:
        return []
    main = _main(sets)
    left = [m for s in sets if s is not main for m in s.runs["model"]]
    return [f"{len(left)} run(s) validated on another validation set than the {len(main.runs)} of the main "
            f"ladder ({', '.join(left)}): losses on different validation sets (or under different tokenizers) are "
            "not comparable, so they are analysed apart and never enter the main ladder's fit or multipliers."]


# ------------------------------------------------------------------------------------------ classification


def _baseline_data(group: pd.DataFrame) -> str | None:
    """The data most dense runs from scratch trained on (ties: a raw corpus before a curated one)."""
    scratch = group[(group["arch"] == "dense") & group["teacher"].isna()]
    if scratch.empty:
        return None
    counts = scratch.groupby("data_hash", dropna=False).agg(n=("model", "size"), variant=("data_variant", "first"))
    counts["raw"] = counts["variant"] != "curated"
    return counts.sort_values(["n", "raw"], ascending=False).index[0]


def _kind(row: pd.Series, base_data: str | None) -> str:
    parts = [] if row["arch"] == "dense" else [str(row["arch"])]
    if row["data_hash"] != base_data:
        parts.append(str(row["data_variant"]) if row["data_variant"] not in (None, "raw") else "other data")
    if isinstance(row["teacher"], str) and row["teacher"]:
        parts.append("distilled")
    return "+".join(parts) or "dense"


def _nearest(row: pd.Series, dense: pd.DataFrame) -> str | None:
    if dense.empty:
        return None
    far = (np.log(dense["params_active"].astype(float) / float(row["params_active"])).abs() * 1e3
           + np.log(dense["tokens"].astype(float) / float(row["tokens"])).abs())
    return str(dense.loc[far.idxmin(), "model"])


def classify(group: pd.DataFrame) -> pd.DataFrame:
    """Kind of each run of one validation set ('dense' = the baseline) and the dense rung it is matched with."""
    base = _baseline_data(group)
    out = group.copy()
    out["kind"] = [_kind(r, base) for _, r in out.iterrows()]
    dense = out[out["kind"] == "dense"]
    out["matched_dense"] = [None if r["kind"] == "dense" else _nearest(r, dense) for _, r in out.iterrows()]
    out["_alt"] = out["kind"] != "dense"
    out = out.sort_values(["_alt", "kind", "params_active"]).reset_index(drop=True)
    return out[[c for c in RUN_COLUMNS if c in out.columns]]


# ------------------------------------------------------------------------------------------ multipliers


def worth(points: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0
          ) -> tuple[Any | None, tuple[float, float] | None, pd.DataFrame, str]:
    """Fit the dense rungs' validation loss against training FLOPs; each other row's worth in dense compute.

    `points`: columns model, kind ('dense' for the baseline), matched_dense, train_flops, val_loss, wall_s.
    Returns (fit, FLOPs span, one row per alternative, note); the note says why there is no fit."""
    from beyondscale.analysis.compute_equivalent import fit_dense, multiplier

    dense = points[points["kind"] == "dense"]
    by_name = points.set_index("model")
    try:
        fit = fit_dense(dense["train_flops"], dense["val_loss"], n_boot=n_boot, seed=seed)
    except UserError as err:
        return None, None, pd.DataFrame(), str(err)
    span = (float(dense["train_flops"].min()), float(dense["train_flops"].max()))
    rows = [{**multiplier(fit, a["model"], float(a["val_loss"]), float(a["train_flops"]), span,
                          _wall_ratio(a, by_name)).to_dict(), "kind": a["kind"], "matched_dense": a.get("matched_dense")}
            for a in points[points["kind"] != "dense"].to_dict("records")]
    return fit, span, pd.DataFrame(rows), ""


def _wall_ratio(row: dict[str, Any], by_name: pd.DataFrame) -> float | None:
    match = row.get("matched_dense")
    if not isinstance(match, str) or match not in by_name.index:
        return None
    dense_wall = float(by_name.loc[match, "wall_s"])
    return float(row["wall_s"]) / dense_wall if dense_wall > 0 else None


# ------------------------------------------------------------------------------------------ derived frames


def fit_table(s: LadderSet) -> pd.DataFrame:
    """The fitted law L(C) = E + A·C^-alpha with its bootstrap intervals."""
    if s.fit is None:
        return pd.DataFrame()
    return pd.DataFrame([{"parameter": name, "value": getattr(s.fit, name),
                          "ci_low": s.fit.ci.get(name, (math.nan, math.nan))[0],
                          "ci_high": s.fit.ci.get(name, (math.nan, math.nan))[1]} for name in ("E", "A", "alpha")])


def fit_band(s: LadderSet, points: int = 60) -> pd.DataFrame:
    """The fitted curve and its 95% bootstrap band over the ladder's FLOPs (and a little beyond)."""
    if s.fit is None or s.span is None:
        return pd.DataFrame()
    flops = s.runs["train_flops"].astype(float)
    grid = np.logspace(math.log10(flops.min()) - 0.1, math.log10(flops.max()) + 0.1, points)
    mid, lo, hi = s.fit.predict_interval(grid)
    return pd.DataFrame({"train_flops": grid, "fit": mid, "low": lo, "high": hi})


def expert_table(load: pd.DataFrame) -> pd.DataFrame:
    """Per MoE model and layer: the load per expert, its normalised entropy and max/mean imbalance."""
    rows = []
    for (model, layer), g in (load.groupby(["model", "layer"], sort=True) if not load.empty else []):
        share = g.sort_values("expert")["load"].to_numpy(float)
        share = share / share.sum() if share.sum() > 0 else share
        nz = share[share > 0]
        entropy = float(-(nz * np.log(nz)).sum() / math.log(len(share))) if len(share) > 1 else 1.0
        rows.append({"model": model, "layer": int(layer), "experts": len(share),
                     "load_per_expert": " ".join(f"{x:.3f}" for x in share), "load_entropy": entropy,
                     "imbalance_max_over_mean": float(share.max() * len(share))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ findings


def ladder_findings(ladder: Ladder) -> list[Any]:
    """Typed findings (`analysis.findings`) of the main validation set, and the runs left out of it."""
    from beyondscale.analysis.findings import ComputeWorth, LadderLaw, LadderNotCompared

    main = ladder.main
    if main is None:
        return []
    out: list[Any] = []
    dense = main.dense if main.lc_tokens is None else main.dense[main.dense["tokens"] == main.lc_tokens]
    if main.fit is not None:
        out.append(LadderLaw(len(dense), float(dense["params_total"].min()), float(dense["params_total"].max()),
                             main.fit.alpha, tuple(main.fit.ci.get("alpha", (math.nan, math.nan))), main.fit.E,
                             lowest=float(dense["val_loss"].min()), interval_note=main.fit.interval_note,
                             flops_low=float(dense["train_flops"].min()), flops_high=float(dense["train_flops"].max())))
        bt = ladder_backtest(dense)
        if bt is not None:
            out.append(bt)
    if main.nd is not None:
        out.append(nd_finding(main.nd, main.dense))
    by_name = main.runs.set_index("model")
    for w in main.worth.to_dict("records"):
        run = by_name.loc[w["name"]]
        out.append(ComputeWorth(w["name"], w["kind"], float(run["params_active"]), float(run["params_total"]),
                                w["multiplier"], w["low"], w["high"], bool(w["extrapolated"]), w["matched_dense"],
                                w["wall_ratio"], interval_note=w.get("interval_note", "")))
    if main.fit is None and len(main.runs) > len(dense):
        out.append(LadderNotCompared(tuple(main.runs["model"][main.runs["kind"] != "dense"]), main.note))
    apart = tuple(m for s in ladder.sets if s is not main for m in s.runs["model"])
    if apart:
        out.append(LadderNotCompared(apart, "validated on another validation set than the ladder, so their "
                                            "losses are in other units"))
    return out


def ladder_backtest(dense: pd.DataFrame) -> Any:
    """The L(C) law refitted without the largest dense rung predicts its validation loss (5+ rungs)."""
    from beyondscale.analysis.law import backtest

    return backtest(dense["train_flops"].astype(float), dense["val_loss"].astype(float), dense["model"],
                    "validation loss", axis="training FLOPs")


def nd_finding(nd: Any, dense: pd.DataFrame) -> Any:
    """The typed finding of a ladder's L(N, D): constants, the allocation at its largest compute, and the
    inference-aware optimum against the Chinchilla-optimal model of the best rung's loss."""
    from beyondscale.analysis.findings import LadderNDLaw

    top = nd.allocation.iloc[-1]
    ci = {k: tuple(nd.fit.ci.get(k, (math.nan, math.nan))) for k in ("alpha", "beta")}
    chin, best = nd.chinchilla or {}, nd.inference_optimal or {}
    return LadderNDLaw(
        n_points=nd.n_points, sizes=nd.sizes, budgets=nd.budgets, params_low=float(dense["params_total"].min()),
        params_high=float(dense["params_total"].max()), tokens_low=float(dense["tokens"].min()),
        tokens_high=float(dense["tokens"].max()), E=nd.fit.E, alpha=nd.fit.alpha, alpha_ci=ci["alpha"],
        beta=nd.fit.beta, beta_ci=ci["beta"], top_compute=float(top["C_6ND"]), top_n_opt=float(top["N_opt"]),
        top_d_opt=float(top["D_opt"]), best=nd.best, target_loss=nd.target_loss,
        inference_tokens=nd.inference_tokens, inference_assumed=nd.inference_assumed,
        chinchilla_params=chin.get("params", math.nan), chinchilla_tokens=chin.get("train_tokens", math.nan),
        chinchilla_flops=chin.get("total_flops", math.nan), optimal_params=best.get("params", math.nan),
        optimal_tokens=best.get("train_tokens", math.nan), optimal_flops=best.get("total_flops", math.nan),
        note=nd.note, extrapolated=_nd_extrapolated(nd, dense))


def _nd_extrapolated(nd: Any, dense: pd.DataFrame) -> tuple[str, ...]:
    from beyondscale.analysis.ladder_nd import outside

    models = [("the compute-optimal model", nd.allocation["N_opt"].iloc[-1], nd.allocation["D_opt"].iloc[-1])]
    models += [(what, p["params"], p["train_tokens"]) for what, p in
               (("the inference-aware optimum", nd.inference_optimal), ("the Chinchilla-optimal one", nd.chinchilla))
               if p is not None]
    return tuple(what for what, n, d in models if outside(dense, n, d))
