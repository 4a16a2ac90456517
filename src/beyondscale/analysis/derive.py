"""Derive typed findings from the analysis frames: size steps, dominance, framing, knees, versions.

Only conclusions live here, no sentences (see `wording.py`). Every step works on model keys and the size
order (size, key); display names are attached at the end for the reader.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis.context import Context
from beyondscale.analysis.curves import MIN_KNEE_POINTS
from beyondscale.analysis.findings import (
    Change,
    ConstraintBinds,
    FramingWarning,
    MixedVersions,
    NegativeReturns,
    NoDominantModel,
    PValue,
    ReturnsFlatten,
    SameMeasurement,
    SignificantDifference,
    SizeStep,
    UnevenReturns,
    VersionMismatch,
    Win,
)
from beyondscale.analysis.inputs import is_estimate, num, size_relation
from beyondscale.analysis.law import Backtest
from beyondscale.analysis.marginal import default_threshold, higher_is_better, is_accuracy_like, uneven
from beyondscale.analysis.versions import Versions

EXACT_TESTS = ("mcnemar", "sign_flip_exact")


def pvalue(r: Any) -> PValue:
    """The PValue of a paired row (a Series or a namedtuple)."""
    get = r.get if isinstance(r, pd.Series) else lambda c, d=None: getattr(r, c, d)
    floor = float(get("p_floor", 0.0))
    return PValue(float(get("p_value")), floor if math.isfinite(floor) else 0.0, float(get("p_adjusted")),
                  int(get("n_tests", 1) or 1), str(get("test", "")) in EXACT_TESTS, int(get("n_items", 0) or 0))


def primary_rows(paired: pd.DataFrame) -> pd.DataFrame:
    return paired[paired["primary"].astype(bool)] if not paired.empty else paired


def wins(ctx: Context, paired: pd.DataFrame) -> list[Win]:
    """Every significant primary-metric row, as the winner over the loser."""
    out = []
    rows = primary_rows(paired)
    for r in rows[rows["better"].astype(str) != ""].itertuples(index=False):
        loser = r.model_a if r.better == r.model_b else r.model_b
        same = size_relation(ctx.size.get(r.model_key_a, np.nan), ctx.size.get(r.model_key_b, np.nan)) == 0
        out.append(Win(r.task, r.metric, r.better, loser, float(r.effect), pvalue(r), r.test, int(r.n_items), same))
    return out


def _ratio(lb: pd.DataFrame, a: str, b: str, col: str) -> float:
    x, y = num(lb.at[a, col]) if col in lb.columns else np.nan, num(lb.at[b, col]) if col in lb.columns else np.nan
    return y / x if math.isfinite(x) and math.isfinite(y) and x > 0 else float("nan")


def _changes(lb: pd.DataFrame, paired: pd.DataFrame, a: str, b: str, primary: dict[str, str]) -> tuple[Change, ...]:
    pr = primary_rows(paired)
    if not pr.empty:
        pr = pr[(pr["model_key_a"] == a) & (pr["model_key_b"] == b)].set_index("task")
    out = []
    for t, m in primary.items():
        col = f"{t}/{m}"
        acc = is_accuracy_like(m, lb[col]) if col in lb.columns else False
        if t in pr.index:
            r = pr.loc[t]
            delta, p, sig = float(r["effect"]), pvalue(r), bool(r["significant"])
        elif col in lb.columns and math.isfinite(num(lb.at[a, col])) and math.isfinite(num(lb.at[b, col])):
            delta, p, sig = num(lb.at[b, col]) - num(lb.at[a, col]), None, False
        else:
            continue
        out.append(Change(t, m, delta, (delta > 0) == higher_is_better(m) and delta != 0, acc, sig, p))
    return tuple(out)


def size_steps(ctx: Context, lb: pd.DataFrame, paired: pd.DataFrame, primary: dict[str, str]) -> list[SizeStep]:
    """Each model against the next in size order; energy shown only when it is a separate measurement."""
    lbk = lb.set_index("model_key")
    keys = [k for k in ctx.order if k in lbk.index]
    facts = ctx.table.set_index("model_key")
    framed = {(f.a, f.b) for f in framing(ctx)}
    out = []
    for a, b in zip(keys[:-1], keys[1:], strict=True):
        sources = f"{lbk.at[a, 'energy_source']},{lbk.at[b, 'energy_source']}"
        out.append(SizeStep(
            ctx.name[a], ctx.name[b], _ratio(facts, a, b, "size"), _ratio(facts, a, b, "params_non_embedding"),
            _changes(lbk, paired, a, b, primary), _ratio(lbk, a, b, "ms_per_item"),
            _ratio(lbk, a, b, "joules_per_token"), is_estimate(sources),
            size_relation(ctx.size[a], ctx.size[b]) == 0, (ctx.name[a], ctx.name[b]) in framed))
    return out


def trade_off_front(ws: tuple[Win, ...] | list[Win]) -> tuple[list[Win], tuple[str, ...]]:
    """The wins among models no other model dominates, and the dominated models (sorted).

    A model is dominated when another model is significantly better than it somewhere and it is significantly
    better than that model nowhere: its wins are not part of the trade-off a reader has to make.
    """
    pairs = {(w.better, w.worse) for w in ws}
    dominated = {worse for better, worse in pairs if (worse, better) not in pairs}
    front = [w for w in ws if w.better not in dominated and w.worse not in dominated]
    return (front, tuple(sorted(dominated))) if front else (list(ws), ())


def dominance(ctx: Context, paired: pd.DataFrame, primary: dict[str, str]) -> NoDominantModel | None:
    """No dominant model when every model is significantly worse than another somewhere."""
    ws = wins(ctx, paired)
    beaten = {w.worse for w in ws}
    models = set(pd.unique(pd.concat([paired["model_a"], paired["model_b"]]))) if not paired.empty else set()
    if not models or not ws or models - beaten:
        return None
    front, dominated = trade_off_front(ws)
    tied = [t for t in primary if t not in {w.task for w in front}]
    return NoDominantModel(tuple(front), tuple(tied), dominated)


def cheaper_better(ctx: Context, paired: pd.DataFrame, adjacent: set[tuple[str, str]]) -> list[SignificantDifference]:
    """A cheaper model significantly better than a bigger one, where no size step already says so."""
    out = []
    key_of = {v: k for k, v in ctx.name.items()}
    for w in wins(ctx, paired):
        kb, kw = key_of[w.better], key_of[w.worse]
        if size_relation(ctx.size[kb], ctx.size[kw]) == -1 and (kb, kw) not in adjacent:
            out.append(SignificantDifference(w, False))
    return out


def _fact_pair(facts: pd.DataFrame, a: str, b: str, col: str) -> tuple[str, str] | None:
    x, y = facts.at[a, col], facts.at[b, col]
    if pd.isna(x) or pd.isna(y) or x == y:
        return None
    fmt = (lambda v: f"{int(v):,}") if col == "vocab_size" else str
    return fmt(x), fmt(y)


def framing(ctx: Context) -> list[FramingWarning]:
    """Adjacent models that differ in family, vocabulary, tokenizer or dtype/quantisation."""
    facts = ctx.table.set_index("model_key")
    out = []
    labels = (("family", "family"), ("architecture", "architecture"), ("vocab_size", "vocabulary"), ("tokenizer_key", "tokenizer"),
              ("quantization", "quantisation"), ("dtype", "dtype"))
    for a, b in zip(ctx.order[:-1], ctx.order[1:], strict=True):
        diffs = []
        for col, label in labels:
            pair = _fact_pair(facts, a, b, col)
            if pair and col == "tokenizer_key":
                diffs.append("tokenizer")
            elif pair:
                diffs.append(f"{label} {pair[0]} vs {pair[1]}")
        if diffs:
            out.append(FramingWarning(ctx.name[a], ctx.name[b], tuple(diffs)))
    return out


def _significant(paired: pd.DataFrame, task: str, metric: str, a: str, b: str) -> bool:
    if paired.empty:
        return False
    r = paired[(paired["task"] == task) & (paired["metric"] == metric) & (paired["model_a"] == a)
               & (paired["model_b"] == b)]
    return bool(len(r)) and bool(r["significant"].iloc[0])


def _main_gains(marginal: pd.DataFrame, curves: pd.DataFrame, task: str, metric: str) -> pd.DataFrame:
    """Adjacent gains on parameters within the family that carries the curve's law."""
    c = curves[(curves["task"] == task) & (curves["metric"] == metric) & (curves["axis"] == "params_total")]
    fam = c.loc[c["in_fit"].astype(bool), "family"] if "in_fit" in c.columns else pd.Series(dtype=object)
    m = marginal[(marginal["task"] == task) & (marginal["metric"] == metric) & (marginal["axis"] == "params_total")
                 & (marginal["source"] == "adjacent")]
    if len(fam) and "family" in m.columns:
        m = m[m["family"] == fam.iloc[0]]
    return m


def knee_findings(an_knees: pd.DataFrame, marginal: pd.DataFrame, curves: pd.DataFrame, paired: pd.DataFrame,
                  primary: dict[str, str], min_gain: float | None = None
                  ) -> list[ReturnsFlatten | NegativeReturns | UnevenReturns]:
    """On parameters, for primary metrics, within the family that carries the law: a threshold knee (every
    later doubling gains less) is a flattening, or losses when later models score lower; a doubling below
    the threshold followed by larger gains is uneven returns, worded with the gains themselves."""
    out: list[ReturnsFlatten | NegativeReturns | UnevenReturns] = []
    if curves.empty:
        return out
    knees = an_knees[(an_knees["axis"] == "params_total") & (an_knees["method"] == "threshold")] \
        if not an_knees.empty else an_knees
    for task, metric in primary.items():
        where = (curves["task"] == task) & (curves["metric"] == metric) & (curves["axis"] == "params_total")
        inside = curves.loc[where & curves["in_fit"].astype(bool)] if "in_fit" in curves.columns else curves.loc[where]
        n = int(inside["x"].nunique())
        if n < MIN_KNEE_POINTS:
            continue
        m = _main_gains(marginal, curves, task, metric)
        kn = knees[(knees["task"] == task) & (knees["metric"] == metric)] if not knees.empty else knees
        thr = float(kn["threshold"].iloc[0]) if len(kn) else (
            min_gain if min_gain is not None else default_threshold(metric, inside["y"].to_numpy(float)))
        if len(kn):
            r = kn.iloc[0]
            later = m[m["x_from"] >= r["x"]]
            worse = tuple((str(t), float(g), _significant(paired, task, metric, f, t))
                          for f, t, g in zip(later["from_model"], later["to_model"], later["gain"], strict=True) if g < 0)
            if worse:
                out.append(NegativeReturns(task, metric, r["model"], worse, n, higher_is_better(metric),
                                           is_accuracy_like(metric)))
            else:
                out.append(ReturnsFlatten(task, metric, r["model"], thr, is_accuracy_like(metric), n))
        elif len(m) and uneven(m, thr):
            gains = tuple((str(f), str(t), float(g)) for f, t, g in
                          zip(m["from_model"], m["to_model"], m["gain_per_doubling"], strict=True) if math.isfinite(g))
            out.append(UnevenReturns(task, metric, gains, thr, is_accuracy_like(metric), n))
    return out


def backtest_findings(backtests: pd.DataFrame, primary: dict[str, str]) -> list[Backtest]:
    """The backtest of each primary metric's law over parameters (fitted without its largest model)."""
    if backtests.empty:
        return []
    is_primary = np.array([primary.get(t) == m for t, m in zip(backtests["task"], backtests["metric"], strict=True)])
    rows = backtests[(backtests["axis"] == "params_total").to_numpy() & is_primary]
    return [Backtest(r.metric, r.held_out, float(r.held_out_params), float(r.predicted), float(r.low), float(r.high),
                     float(r.observed), int(r.n_fitted), task=r.task) for r in rows.itertuples(index=False)]


def same_measurement(lb: pd.DataFrame) -> list[SameMeasurement]:
    """One SameMeasurement when energy figures shown are estimates derived from time."""
    src = [s for s, e in zip(lb.get("energy_source", []), lb.get("joules_per_token", []), strict=True)
           if is_estimate(s) and math.isfinite(num(e))]
    return [SameMeasurement(sorted(set(src))[0])] if len(src) >= 2 else []


def constraint_findings(recommendation: dict) -> list[ConstraintBinds]:
    """Models the constraints rule out before the pick (all of them when nothing qualifies)."""
    if recommendation.get("rule") != "constraints":
        return []
    out = []
    for c in recommendation.get("candidates") or []:
        if c.get("model") == recommendation.get("model"):
            break
        if c.get("fails"):
            out.append(ConstraintBinds(str(c["model"]), tuple(c["fails"])))
    return out


def version_findings(ctx: Context, paired: pd.DataFrame, unshared: list[tuple[str, str, str]], versions: Versions
                     ) -> list[VersionMismatch | MixedVersions]:
    """Models lacking the current version of a task, and leaderboard columns that mix versions."""
    out: list[VersionMismatch | MixedVersions] = []
    seen = set()
    pr = paired.drop_duplicates(["task", "model_key_a", "model_key_b"]) if not paired.empty else paired
    rows = [(r.task, r.model_key_a, r.model_key_b, int(r.n_items), True) for r in pr.itertuples(index=False)]
    rows += [(t, a, b, 0, False) for t, a, b in unshared]
    for task, a, b, n, shared in rows:
        cur = versions.current(task)
        for k, other in ((a, b), (b, a)):
            if cur not in versions.have.get((k, task), set()) and (task, k, other) not in seen:
                seen.add((task, k, other))
                out.append(VersionMismatch(task, ctx.name[k], ctx.name[other], n, shared))
    for task in versions.order:
        older = tuple(ctx.name[k] for k in ctx.order if (k, task) in versions.have
                      and versions.own(k, task) != versions.current(task))
        if older and len(versions.order[task]) > 1:
            out.append(MixedVersions(task, older))
    return out
