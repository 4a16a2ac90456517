"""The study's findings, computed from this run's records and scores, and their wording.

Nothing here is typed in: every figure in a finding comes from the training records, the store's
scores or its probe results, and `word_*` only formats those figures. The findings are typed
(`study_findings`) and their wording is registered with `analysis.wording`, so the report words them
like the store's own. Fits and intervals use the analysis package (`analysis.fits.fit_arrays`,
`analysis.ladder.worth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from beyondscale.analysis.findings import FittedLaw
from beyondscale.analysis.wording import floor_unmeasured, interval, n_params, register, words
from beyondscale.analysis.wording import times as _x
from beyondscale.quickstart.study import Study

__all__ = ["StudyFindings", "compute_findings", "study_findings", "verdict_lines"]

BPB = "heldout_source_bpb/bits_per_byte"


@dataclass
class Step:
    """The largest adjacent step of the dense ladder, on held-out bits per byte."""

    small: str
    large: str
    params_small: float
    params_large: float
    bpb_small: float
    bpb_large: float

    @property
    def doublings(self) -> float:
        return math.log2(self.params_large / self.params_small)

    @property
    def gain_per_doubling(self) -> float:
        return (self.bpb_small - self.bpb_large) / self.doublings


@dataclass
class Worth:
    """An alternative (MoE, curated data) in dense compute and dense size."""

    name: str
    kind: str
    params_active: float
    params_total: float
    bpb: float | None
    multiplier: float
    low: float
    high: float
    extrapolated: bool
    wall_ratio: float | None
    size_equivalent: tuple[float, float, float] | None = None  # dense params reaching its bpb (point, low, high)


@dataclass
class Placement:
    """A real model's held-out bits per byte against the ladder's law at its size."""

    name: str
    params: float
    bpb: float
    predicted: float
    low: float
    high: float
    beyond: float  # its parameters / the largest rung's


@dataclass(frozen=True)
class HeldOutLaw(FittedLaw):
    """The dense ladder's held-out bits per byte against parameters, fitted: bpb(N) = E + A·N^-alpha."""

    tokens: int = 0  # per rung


@dataclass(frozen=True)
class ProbeTrend:
    """A probe's headline at the smallest and the largest rung that have it."""

    what: str
    unit: str
    small: str
    params_small: float
    value_small: float
    large: str
    params_large: float
    value_large: float


@dataclass(frozen=True)
class NotComputed:
    """A figure the study could not compute, and why."""

    what: str
    reason: str


@dataclass
class StudyFindings:
    points: pd.DataFrame
    law: Any | None = None  # FitResult of dense bpb against parameters
    law_note: str = ""
    step: Step | None = None
    worth: list[Worth] = field(default_factory=list)
    worth_note: str = ""
    placements: list[Placement] = field(default_factory=list)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)


def ladder_points(study: Study) -> pd.DataFrame:
    """One row per trained model: its record beside its held-out bits per byte."""
    rows = []
    for rung in study.rungs:
        r = study.records[rung.name]
        rows.append({"model": rung.name, "kind": rung.kind, "data": rung.data, "matched_dense": rung.matched_dense,
                     "params_total": r["params_total"], "params_active": r["params_active"], "tokens": r["tokens"],
                     "steps": r["steps"], "train_flops": r["train_flops"], "val_loss": r["val_loss"],
                     "heldout_bpb": study.metrics.get(rung.name, {}).get(BPB), "wall_s": r["wall_s"],
                     "tokens_per_s": r["tokens_per_s"]})
    return pd.DataFrame(rows)


def _law(points: pd.DataFrame) -> tuple[Any | None, str]:
    from beyondscale.analysis.fits import fit_arrays

    dense = points[points["kind"] == "dense"].dropna(subset=["heldout_bpb"])
    if len(dense) < 4:
        return None, f"the law needs 4 dense rungs with a held-out score; {len(dense)} have one"
    return fit_arrays(dense["params_total"], dense["heldout_bpb"], "loss", n_boot=1000, seed=0), ""


def _step(points: pd.DataFrame) -> Step | None:
    dense = points[points["kind"] == "dense"].dropna(subset=["heldout_bpb"]).sort_values("params_total")
    if len(dense) < 2:
        return None
    a, b = dense.iloc[-2], dense.iloc[-1]
    return Step(a["model"], b["model"], a["params_total"], b["params_total"], a["heldout_bpb"], b["heldout_bpb"])


def _worth(points: pd.DataFrame, law: Any | None) -> tuple[list[Worth], str]:
    from beyondscale.analysis.compute_equivalent import dense_flops_for
    from beyondscale.analysis.ladder import worth

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
        out.append(Worth(m["name"], m["kind"], alt["params_active"], alt["params_total"], bpb, m["multiplier"],
                         m["low"], m["high"], m["extrapolated"], m["wall_ratio"], size))
    return out, ""


def _placements(study: Study, points: pd.DataFrame, law: Any | None, frames_models: pd.DataFrame) -> list[Placement]:
    if law is None:
        return []
    largest = float(points["params_total"][points["kind"] == "dense"].max())
    params = dict(zip(frames_models["model_key"], frames_models["params_total"], strict=False))
    out = []
    for name in study.models:
        if name in set(points["model"]):
            continue
        bpb, n = study.metrics.get(name, {}).get(BPB), params.get(study.keys.get(name))
        if bpb is None or not n:
            continue
        mid, lo, hi = law.predict_interval([float(n)])
        out.append(Placement(name, float(n), float(bpb), float(mid[0]), float(lo[0]), float(hi[0]), float(n) / largest))
    return out


def _probe_rows(study: Study) -> pd.DataFrame:
    from beyondscale.interpret.report import probe_vs_size

    frame = probe_vs_size(study.store)
    if frame.empty:
        return frame
    keys = {k: n for n, k in study.keys.items()}
    frame = frame[frame["model_key"].isin(keys)].copy()
    frame["model"] = frame["model_key"].map(keys)
    return frame.sort_values("params_total").reset_index(drop=True)


def compute_findings(study: Study, frames_models: pd.DataFrame) -> StudyFindings:
    points = ladder_points(study)
    law, note = _law(points)
    worth, worth_note = _worth(points, law)
    return StudyFindings(points, law, note, _step(points), worth, worth_note,
                         _placements(study, points, law, frames_models), _probe_rows(study))


# -------------------------------------------------------------------------------------------- wording


def word_step(s: Step) -> str:
    return (f"Scale: going from {n_params(s.params_small)} to {n_params(s.params_large)} parameters "
            f"({s.doublings:.2f} doublings) took held-out bits per byte from {s.bpb_small:.3f} to {s.bpb_large:.3f}: "
            f"{abs(s.gain_per_doubling):.3f} bits per byte {'less' if s.gain_per_doubling >= 0 else 'more'} "
            "per doubling.")


def word_law(f: HeldOutLaw) -> str:
    lo, hi = f.alpha_ci
    return (f"Over the {f.n_rungs}-rung dense ladder ({n_params(f.params_low)} to {n_params(f.params_high)} parameters, "
            f"{f.tokens:,} tokens each), the fitted law bpb(N) = E + A·N^-α has α = {f.alpha:.3g} "
            f"({interval(lo, hi, lambda v: f'{v:.3g}', f.interval_note)}) and E = {f.E:.3g}"
            f"{floor_unmeasured(f.E, f.lowest)}.")


def word_worth(w: Worth) -> str:
    what = ("the MoE" if w.kind == "moe" else "curated data" if w.kind == "curated" else w.name)
    ci = interval(w.low, w.high, _x, "too few dense rungs")
    extra = "; outside the ladder's FLOPs range, so extrapolated" if w.extrapolated else ""
    wall = f", at {w.wall_ratio:.2f}× the wall time of the dense rung it matches" if w.wall_ratio else ""
    size = ""
    if w.size_equivalent and math.isfinite(w.size_equivalent[0]):
        size = (f"; on held-out bits per byte it matched a dense model of {n_params(w.size_equivalent[0])} parameters, "
                f"{w.size_equivalent[0] / w.params_active:.3g}× its {n_params(w.params_active)} active")
    lead = {"moe": f"Architecture: the MoE ({n_params(w.params_active)} active of {n_params(w.params_total)} parameters)",
            "curated": "Data: the curated arm (same rung, same tokens)"}.get(w.kind, w.name)
    return f"{lead} was worth {_x(w.multiplier)} dense compute ({ci}{extra}){wall}{size} — what {what} bought."


def word_placement(p: Placement) -> str:
    side = "below (better than)" if p.bpb < p.low else "above (worse than)" if p.bpb > p.high else "within the band of"
    return (f"{p.name} ({n_params(p.params)} parameters, {p.beyond:.3g}× the largest rung) scored {p.bpb:.3f} bits per "
            f"byte on the held-out source; the ladder's law extrapolated to its size predicts {p.predicted:.3f} "
            f"({p.low:.3f} to {p.high:.3f}), so it sits {side} the ladder's curve.")


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


def word_probe(t: ProbeTrend) -> str:
    return (f"{t.what} went from {t.value_small:.3g} {t.unit} ({t.small}, {n_params(t.params_small)}) to "
            f"{t.value_large:.3g} {t.unit} ({t.large}, {n_params(t.params_large)}) across the ladder.")


def _held_out_law(law: Any, points: pd.DataFrame) -> HeldOutLaw:
    dense = points[points["kind"] == "dense"]
    return HeldOutLaw(len(dense), float(dense["params_total"].min()), float(dense["params_total"].max()), law.alpha,
                      tuple(law.ci.get("alpha", (float("nan"), float("nan")))), law.E,
                      lowest=float(dense["heldout_bpb"].min()), interval_note=law.interval_note,
                      tokens=int(dense["tokens"].iloc[0]))


def study_findings(f: StudyFindings) -> list[Any]:
    """The study's conclusions as typed findings, in verdict order (worded by `analysis.wording.words`)."""
    out: list[Any] = [f.step] if f.step else []
    if f.law is not None:
        out.append(_held_out_law(f.law, f.points))
    elif f.law_note:
        out.append(NotComputed("law fitted", f.law_note))
    out += f.worth
    if f.worth_note:
        out.append(NotComputed("compute-equivalent multipliers", f.worth_note))
    out += f.placements
    if not f.probes.empty:
        out += probe_trends(f.probes, set(f.points["model"]))
    return out


def verdict_lines(f: StudyFindings) -> list[str]:
    return words(study_findings(f))


for _kind, _worder in ((Step, word_step), (HeldOutLaw, word_law), (Worth, word_worth), (Placement, word_placement),
                       (ProbeTrend, word_probe), (NotComputed, lambda f: f"No {f.what}: {f.reason}.")):
    register(_kind, _worder)
