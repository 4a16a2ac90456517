"""What the study concluded, computed from this run's training records, scores and probe results.

Nothing here is typed in: every figure comes from the records, the store's scores or its probe results.
The conclusions are the analysis package's typed findings (`analysis.findings`), worded where every
finding is worded (`analysis.wording`). Fits and intervals are the analysis package's
(`analysis.fits.fit_arrays`, `analysis.ladder.worth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis.compute_equivalent import dense_flops_for
from beyondscale.analysis.findings import (
    ComputeWorth,
    DoublingGain,
    Finding,
    LadderLaw,
    NotComputed,
    Placement,
    ProbeTrend,
)
from beyondscale.analysis.fits import fit_arrays
from beyondscale.analysis.ladder import worth
from beyondscale.analysis.paired import bpb_difference_interval
from beyondscale.lab.sweep import TrainedLadder
from beyondscale.quickstart.stages import EvaluationStage
from beyondscale.report.probes import probe_vs_size
from beyondscale.store import Frames

__all__ = ["Conclusions", "conclude"]

BPB = "heldout_source_bpb/bits_per_byte"


@dataclass
class Conclusions:
    """The study's conclusions and the frames its report sections show."""

    points: pd.DataFrame
    law: Any | None = None  # FitResult of dense bpb against parameters
    law_note: str = ""
    step: DoublingGain | None = None
    worth: list[ComputeWorth] = field(default_factory=list)
    worth_note: str = ""
    placements: list[Placement] = field(default_factory=list)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)

    def findings(self) -> list[Finding]:
        """The study's conclusions as typed findings, in verdict order."""
        out: list[Finding] = [self.step] if self.step else []
        if self.law is not None:
            out.append(_held_out_law(self.law, self.points))
        elif self.law_note:
            out.append(NotComputed("law fitted", self.law_note))
        out += self.worth
        if self.worth_note:
            out.append(NotComputed("compute-equivalent multipliers", self.worth_note))
        out += self.placements
        if not self.probes.empty:
            out += probe_trends(self.probes, set(self.points["model"]))
        return out


def ladder_points(ladder: TrainedLadder, metrics: dict[str, dict[str, float | None]]) -> pd.DataFrame:
    """One row per trained model: its record beside its held-out bits per byte."""
    rows = []
    for rung in ladder.rungs:
        r = ladder.records[rung.name]
        rows.append({"model": rung.name, "kind": rung.kind, "data": rung.data, "matched_dense": rung.matched_dense,
                     "params_total": r["params_total"], "params_active": r["params_active"], "tokens": r["tokens"],
                     "steps": r["steps"], "train_flops": r["train_flops"], "val_loss": r["val_loss"],
                     "heldout_bpb": metrics.get(rung.name, {}).get(BPB), "wall_s": r["wall_s"],
                     "tokens_per_s": r["tokens_per_s"]})
    return pd.DataFrame(rows)


def _law(points: pd.DataFrame) -> tuple[Any | None, str]:
    dense = points[points["kind"] == "dense"].dropna(subset=["heldout_bpb"])
    if len(dense) < 4:
        return None, f"the law needs 4 dense rungs with a held-out score; {len(dense)} have one"
    return fit_arrays(dense["params_total"], dense["heldout_bpb"], "loss", n_boot=1000, seed=0), ""


def _documents(frames: Frames | None, key_a: str | None, key_b: str | None) -> list[np.ndarray]:
    """[logprob a, bytes a, logprob b, bytes b] per held-out document both models scored, on the newest version
    of the task both have; empty lists when the store holds no per-document scores for them."""
    if frames is None or frames.items.empty or not key_a or not key_b:
        return [np.array([])] * 4
    rows = frames.items[(frames.items["task"] == BPB.split("/")[0]) & frames.items["metric"].isin(["logprob", "bytes"])
                        & frames.items["model_key"].isin([key_a, key_b])]
    both = rows.groupby("task_key")["model_key"].nunique()
    versions = frames.tasks[frames.tasks["task_key"].isin(both[both == 2].index)].sort_values("created")
    if versions.empty:
        return [np.array([])] * 4
    rows = rows[rows["task_key"] == versions["task_key"].iloc[-1]]
    wide = rows.pivot_table(index="doc_id", columns=["model_key", "metric"], values="value").dropna()
    return [wide[(k, m)].to_numpy(float) for k in (key_a, key_b) for m in ("logprob", "bytes")]


def _step(points: pd.DataFrame, frames: Frames | None = None, keys: dict[str, str] | None = None
          ) -> DoublingGain | None:
    """The two largest dense rungs: their held-out bits per byte, and an interval on the gain per doubling from
    the documents both scored (none under MIN_INTERVAL_ITEMS documents)."""
    dense = points[points["kind"] == "dense"].dropna(subset=["heldout_bpb"]).sort_values("params_total")
    if len(dense) < 2:
        return None
    a, b = dense.iloc[-2], dense.iloc[-1]
    docs = _documents(frames, (keys or {}).get(a["model"]), (keys or {}).get(b["model"]))
    low = high = math.nan
    if len(docs[0]):
        _, lo, hi = bpb_difference_interval(*docs)
        doublings = math.log2(float(b["params_total"]) / float(a["params_total"]))
        low, high = lo / doublings, hi / doublings
    return DoublingGain(a["model"], b["model"], float(a["params_total"]), float(b["params_total"]),
                        float(a["heldout_bpb"]), float(b["heldout_bpb"]), ci_low=low, ci_high=high,
                        n_items=len(docs[0]))


def _worth(points: pd.DataFrame, law: Any | None) -> tuple[list[ComputeWorth], str]:
    _, _, table, note = worth(points)
    if note:
        return [], note
    dense = points["params_total"][points["kind"] == "dense"]
    span = (float(dense.min()), float(dense.max()))
    by = points.set_index("model")
    out = []
    for m in table.to_dict("records"):
        alt = by.loc[m["name"]]
        bpb = alt["heldout_bpb"]
        size = dense_flops_for(law, bpb, span) if law is not None and bpb else None
        out.append(ComputeWorth(m["name"], m["kind"], float(alt["params_active"]), float(alt["params_total"]),
                                m["multiplier"], m["low"], m["high"], bool(m["extrapolated"]),
                                matched=m.get("matched_dense"), wall_ratio=m["wall_ratio"], heldout=bpb,
                                size_equivalent=size, interval_note=m.get("interval_note", "")))
    return out, ""


def _placements(evaluation: EvaluationStage, points: pd.DataFrame, law: Any | None,
                frames_models: pd.DataFrame) -> list[Placement]:
    if law is None:
        return []
    largest = float(points["params_total"][points["kind"] == "dense"].max())
    params = dict(zip(frames_models["model_key"], frames_models["params_total"], strict=False))
    out = []
    for name in evaluation.specs:
        if name in set(points["model"]):
            continue
        bpb, n = evaluation.metrics.get(name, {}).get(BPB), params.get(evaluation.keys.get(name))
        if bpb is None or not n:
            continue
        mid, lo, hi = law.predict_interval([float(n)])
        out.append(Placement(name, float(n), float(bpb), float(mid[0]), float(lo[0]), float(hi[0]), float(n) / largest))
    return out


def _probe_rows(store: str, evaluation: EvaluationStage) -> pd.DataFrame:
    frame = probe_vs_size(store)
    if frame.empty:
        return frame
    keys = {k: n for n, k in evaluation.keys.items()}
    frame = frame[frame["model_key"].isin(keys)].copy()
    frame["model"] = frame["model_key"].map(keys)
    return frame.sort_values("params_total").reset_index(drop=True)


def conclude(store: str, ladder: TrainedLadder, evaluation: EvaluationStage, frames: Frames) -> Conclusions:
    """The ladder's law, its last doubling, what each alternative is worth, where the other models sit."""
    points = ladder_points(ladder, evaluation.metrics)
    law, note = _law(points)
    alternatives, worth_note = _worth(points, law)
    return Conclusions(points, law, note, _step(points, frames, evaluation.keys), alternatives, worth_note,
                       _placements(evaluation, points, law, frames.models), _probe_rows(store, evaluation))


def probe_trends(frame: pd.DataFrame, ladder: set[str]) -> list[ProbeTrend]:
    rows = frame[frame["model"].isin(ladder)]
    out = []
    for col, what, unit in (("prediction_depth", "Prediction depth", "layers"),
                            ("counterfactual_mean_abs_attribute_gap", "The mean absolute counterfactual gap", "nats")):
        if col not in rows or rows[col].notna().sum() < 2:
            continue
        ok = rows.dropna(subset=[col])
        a, b = ok.iloc[0], ok.iloc[-1]
        out.append(ProbeTrend(what, unit, a["model"], float(a["params_total"]), float(a[col]), b["model"],
                              float(b["params_total"]), float(b[col])))
    return out


def _held_out_law(law: Any, points: pd.DataFrame) -> LadderLaw:
    dense = points[points["kind"] == "dense"]
    return LadderLaw(len(dense), float(dense["params_total"].min()), float(dense["params_total"].max()), law.alpha,
                     tuple(law.ci.get("alpha", (float("nan"), float("nan")))), law.E,
                     lowest=float(dense["heldout_bpb"].min()), interval_note=law.interval_note, against="parameters",
                     metric="held-out bits per byte", tokens=int(dense["tokens"].iloc[0]))
