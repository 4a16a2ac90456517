"""The one place where findings become sentences. The CLI, HTML and Markdown all print `words(findings)`.

Wording rules: a model of equal size is never "smaller" or "bigger"; a negative gain is "worse", not
"flattens"; p-values at a bootstrap's floor print as an inequality; Holm-adjusted p is shown next to the
raw p whenever a comparison spans several tasks; an energy figure estimated from CPU time is not a second
measurement next to the time it came from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

from beyondscale.analysis.findings import (
    Change,
    ComputeWorth,
    ConstraintBinds,
    DoublingGain,
    Finding,
    FramingWarning,
    LadderLaw,
    LadderNDLaw,
    LadderNotCompared,
    MixedVersions,
    NegativeReturns,
    NoDominantModel,
    NotComputed,
    Placement,
    ProbeTrend,
    PValue,
    QuantisedVariant,
    Recommendation,
    ReturnsFlatten,
    SameMeasurement,
    SignificantDifference,
    SizeStep,
    UnevenReturns,
    VersionMismatch,
    Win,
)
from beyondscale.analysis.law import Backtest

ALPHA = 0.05
MINUS = "\u2212"


def _round_up_1sig(x: float) -> float:
    e = math.floor(math.log10(x))
    return math.ceil(round(x / 10**e, 9)) * 10**e


def format_p(p: float, floor: float = 0.0, exact: bool = False, n_items: int = 0) -> str:
    """'p=0.031'; 'p<0.001' below a thousandth; never below the smallest p the test can give: an exact test at
    its floor 2/2^k prints 'p=0.0078 (the smallest 8 items allow)', a Monte Carlo or bootstrap p at its
    resolution 1/(K+1) prints 'p<' that floor rounded up; NaN with 0 < n_items < MIN_ITEMS: too few items."""
    from beyondscale.analysis.paired import MIN_ITEMS

    if p is None or not math.isfinite(p):
        return f"too few items to test ({n_items})" if 0 < n_items < MIN_ITEMS else "p=n/a"
    if exact and 0 < floor < 1 and p <= floor * (1 + 1e-9) and 0.001 <= p < 1:
        k = round(math.log2(2.0 / floor))
        what = f"{k} items" if k == n_items or n_items == 0 else f"{k} items that differ"
        return f"p={p:.2g} (the smallest {what} allow)"
    if not exact and floor > 0 and p <= floor * (1 + 1e-9):
        bound = max(_round_up_1sig(floor), 0.001)
        return f"p<{bound:g}"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2g}"


def p_text(p: PValue) -> str:
    """Raw p, and the Holm-adjusted p when the comparison spans several tasks ('p=0.004, Holm p=0.012'); what
    Holm adjusts over is said once, at the end of the verdict (`holm_note`)."""
    raw = format_p(p.raw, p.floor, p.exact, p.n_items)
    if p.adjusted is None or p.n_tests <= 1 or not math.isfinite(p.raw):
        return raw
    # Holm's p is at least n_tests x the raw one, never below what the test allows: no floor clause to repeat
    adj = format_p(p.adjusted, 0.0 if p.exact else p.floor * p.n_tests)
    return f"{raw}, Holm {adj}"


def _signed(x: float, digits: int = 3) -> str:
    return f"{x:+.{digits}f}".replace("-", MINUS)


def effect_text(metric: str, delta: float, accuracy_like: bool) -> str:
    """A difference in its units: accuracy points, or the metric's own."""
    if accuracy_like:
        return f"{_signed(100 * delta, 1)} accuracy points"
    return f"{_signed(delta)} {metric}"


def _win(w: Win, with_worse: bool = True) -> str:
    vs = f" than {w.worse}" if with_worse else ""
    return f"{w.better} is significantly better{vs} on {w.task} ({p_text(w.p)})"


def _change(c: Change, a: str, b: str, same_size: bool) -> str:
    """From b's side (the model one step up in size); at the same size, from the winner's side."""
    fig = effect_text(c.metric, c.delta, c.accuracy_like)
    p = f", {p_text(c.p)}" if c.p is not None else ""
    if c.p is None:
        return f"{b} {fig} on {c.task} relative to {a} (no paired test)"
    if not math.isfinite(c.p.raw):  # untested is not "no significant difference"
        return f"{b} {fig} on {c.task} relative to {a} ({p_text(c.p)})"
    if not c.significant:
        return f"no significant difference on {c.task} ({fig}{p})"
    if same_size:
        win, lose, d = (b, a, c.delta) if c.improved else (a, b, -c.delta)
        return f"{win} is significantly better than {lose} on {c.task} ({effect_text(c.metric, d, c.accuracy_like)}{p})"
    if c.improved:
        return f"{b} is significantly better than {a} on {c.task} ({fig}{p})"
    return f"{b} is worse than {a} on {c.task}, significantly ({fig}{p})"


def _size_head(f: SizeStep) -> str:
    ne, r = f.non_embedding_ratio, f.size_ratio
    ne_text = f"{ne:.1f}x the non-embedding parameters" if math.isfinite(ne) and math.isfinite(r) \
        and abs(ne - r) > 0.25 * r else ""
    if f.other_differences:
        return (f"{f.b} vs {f.a}, a different model rather than a larger one ({r:.1f}x the parameters"
                + (f", but {ne_text}" if ne_text else "") + ")")
    if f.same_size:
        return f"{f.a} and {f.b} are the same size"
    if not math.isfinite(r):
        return f"{f.b} compared with {f.a}"
    return f"{f.b} has {r:.1f}x the parameters of {f.a}" + (f" (but {ne_text})" if ne_text else "")


def _size_step(f: SizeStep) -> str:
    head = _size_head(f)
    parts = [_change(c, f.a, f.b, f.same_size) for c in f.changes]
    s = head + (": " + "; ".join(parts) if parts else "")
    cost = []
    if math.isfinite(f.energy_ratio) and not f.energy_estimated:
        cost.append(f"{f.energy_ratio:.1f}x the energy per token")
    if math.isfinite(f.time_ratio):
        cost.append(f"{f.time_ratio:.1f}x the time per item")
    if cost:
        s += f"; {f.b} takes " + " and ".join(cost)
    return s + "."


def recommendation_reason(f: Recommendation) -> str:
    """Why this pick, by which rule, and (same sentence) where a cheaper or same-size model is better."""
    s = f.detail
    if f.cheaper_wins:
        s += "; but " + "; ".join(
            f"{w.better}, which is {'the same size' if w.same_size else 'smaller'}, is significantly better on "
            f"{w.task} ({p_text(w.p)})" for w in f.cheaper_wins)
    return s


def _recommendation(f: Recommendation) -> str:
    if f.model is None:
        return f"No model recommended: {recommendation_reason(f)}."
    return f"Recommended: {f.model}: {recommendation_reason(f)}."


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _task_wins(task: str, wins: list[Win]) -> str:
    """One task of one winner: the models it beats, and the weakest p among those wins."""
    weakest = max(wins, key=lambda w: (w.p.adjusted if w.p.adjusted is not None else w.p.raw, w.p.raw))
    prefix = "weakest: " if len(wins) > 1 else ""
    return f"{task} than {_names([w.worse for w in wins])} ({prefix}{p_text(weakest.p)})"


def _no_dominant(f: NoDominantModel) -> str:
    by_model: dict[str, dict[str, list[Win]]] = {}
    for w in f.wins:
        by_model.setdefault(w.better, {}).setdefault(w.task, []).append(w)
    parts = [f"{m} is significantly better on " + " and ".join(_task_wins(t, ws) for t, ws in tasks.items())
             for m, tasks in by_model.items()]
    s = "No model dominates: " + "; ".join(parts)
    if f.ties:
        s += f"; no significant difference on {', '.join(f.ties)}"
    if f.dominated:
        s += (f" (set aside: {_names(list(f.dominated))}, each significantly worse than another model somewhere"
              " and better than it nowhere)")
    return s + ". Which to use depends on which of these tasks matters to you."


def _flatten(f: ReturnsFlatten) -> str:
    unit = _threshold_unit(f.threshold, f.accuracy_like, f.metric)
    return (f"On {f.task}, returns flatten after {f.model}: beyond it every doubling of parameters gains less than "
            f"{unit} ({f.n_points} sizes).")


def _threshold_unit(threshold: float, accuracy_like: bool, metric: str) -> str:
    return f"{100 * threshold:.0f} accuracy point" if accuracy_like and threshold < 1 else f"{threshold:g} {metric}"


def _uneven(f: UnevenReturns) -> str:
    each = ", ".join(f"{_gain(g, f.accuracy_like)} ({a} to {b})" for a, b, g in f.gains)
    return (f"On {f.task}, returns did not flatten: the gain per doubling of parameters varied, {each} "
            f"({f.n_points} sizes); a doubling below {_threshold_unit(f.threshold, f.accuracy_like, f.metric)} "
            "was followed by larger gains.")


def _gain(g: float, accuracy_like: bool) -> str:
    return f"{_signed(100 * g, 1)} points" if accuracy_like else _signed(g, 3)


def interval(lo: float, hi: float, fmt: Callable[[float], str], note: str = "") -> str:
    """'95% CI a to b'; an unbounded end says so; no interval: the reason."""
    if not (math.isfinite(lo) or math.isinf(lo)) or not (math.isfinite(hi) or math.isinf(hi)):
        return f"no interval: {note}" if note else "no interval"
    low = fmt(lo) if math.isfinite(lo) else "no lower bound"
    high = fmt(hi) if math.isfinite(hi) else "no upper bound"
    return f"95% CI {low} to {high}"


def _backtest(f: Backtest) -> str:
    on = f"On {f.task}, f" if f.task else "F"
    pred = f"{f.predicted:.3g}"
    if f.within is None:
        rng = f"{pred} (no interval from {f.n_fitted} sizes)"
        verdict = ""
    else:
        rng = f"{pred} ({interval(f.low, f.high, lambda v: f'{v:.3g}')})"
        verdict = "; within its interval" if f.within else "; outside its interval: the law did not predict it"
    size = n_params(f.held_out_params) if f.axis == "parameters" else f"{f.held_out_params:.3g} {f.axis}"
    return (f"{on}itted without its largest model {f.held_out} ({size}), the law over the "
            f"other {f.n_fitted} sizes predicted {f.metric} {rng}; measured {f.observed:.3g}{verdict}.")


def _negative(f: NegativeReturns) -> str:
    each = [f"{m} scores lower ({effect_text(f.metric, -g if not f.higher_better else g, f.accuracy_like)}, "
            f"{'significant' if sig else 'not significant'})" for m, g, sig in f.worse]
    return f"On {f.task}, more parameters beyond {f.model} did not help: " + "; ".join(each) + "."


def _same(f: SameMeasurement) -> str:
    return (f"Energy is estimated from CPU time here ({f.source}), so energy ratios repeat the time ratios: they "
            "are the same measurement, reported once (as time).")


def _framing(f: FramingWarning) -> str:
    return (f"{f.a} and {f.b} differ in more than size ({', '.join(f.differences)}): what separates them is not "
            "a scaling result.")


def _version(f: VersionMismatch) -> str:
    if not f.shared:
        return (f"{f.model} was not scored on the current version of {f.task} and shares no version of it with "
                f"{f.other}: no paired test.")
    return (f"{f.model} was not scored on the current version of {f.task}: the paired test with {f.other} uses the "
            f"older version both share ({f.n_items} items).")


def _mixed_versions(f: MixedVersions) -> str:
    return (f"The leaderboard's {f.task} column mixes task versions ({', '.join(f.models_on_older)} on an older "
            "one, with other items): those means are not directly comparable.")


def n_params(x: float) -> str:
    """A count in k/M/B with 3 significant digits (172k, 1.36M)."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


def times(v: float) -> str:
    """A multiplier: '1.8×', or '∞' beyond a fit's asymptote."""
    return "∞" if math.isinf(v) else f"{v:.3g}×"


def _ladder_law(f: LadderLaw) -> str:
    lo, hi = f.alpha_ci
    if f.against == "parameters":
        return (f"Over the {f.n_rungs}-rung dense ladder ({n_params(f.params_low)} to {n_params(f.params_high)} "
                f"parameters, {f.tokens:,} tokens each), the fitted law of {f.metric} L(N) = E + A·N^-α has "
                f"α = {f.alpha:.3g} ({interval(lo, hi, lambda v: f'{v:.3g}', f.interval_note)}) and floor "
                f"E = {f.E:.3g}{floor_unmeasured(f.E, f.lowest)}.")
    return (f"Over the {f.n_rungs}-rung trained dense ladder ({n_params(f.params_low)} to {n_params(f.params_high)} "
            f"parameters, {f.flops_low:.3g} to {f.flops_high:.3g} training FLOPs), validation loss fits "
            f"L(C) = E + A·C^-α with α = {f.alpha:.3g} ({interval(lo, hi, lambda v: f'{v:.3g}', f.interval_note)}) "
            f"and floor E = {f.E:.3g} nats per token{floor_unmeasured(f.E, f.lowest)}.")


def _ladder_nd(f: LadderNDLaw) -> str:
    from beyondscale.analysis.ladder_nd import INFERENCE_MULTIPLE

    (alo, ahi), (blo, bhi) = f.alpha_ci, f.beta_ci
    s = (f"Over the {f.n_points} dense runs ({f.sizes} sizes × {f.budgets} token budgets; {n_params(f.params_low)} to "
         f"{n_params(f.params_high)} parameters, {n_params(f.tokens_low)} to {n_params(f.tokens_high)} tokens), "
         f"validation loss fits L(N, D) = E + A·N^-α + B·D^-β (N = total parameters) with α = {f.alpha:.3g} (95% CI "
         f"{alo:.3g} to {ahi:.3g}), β = {f.beta:.3g} (95% CI {blo:.3g} to {bhi:.3g}) and E = {f.E:.3g}{_floor_unmeasured(f)}; at the "
         f"ladder's largest compute (C = 6·N·D = {f.top_compute:.3g} FLOPs) the compute-optimal model has "
         f"{n_params(f.top_n_opt)} parameters on {n_params(f.top_d_opt)} tokens "
         f"({f.top_d_opt / f.top_n_opt:.3g} tokens per parameter).")
    served = f"{f.inference_tokens:.3g} tokens" + (
        f" (assumed: {INFERENCE_MULTIPLE:g}× its training tokens)" if f.inference_assumed else "")
    if f.note or not math.isfinite(f.optimal_flops):
        return s[:-1] + _nd_outside(f) + f". For {f.best}'s loss served {served}: " \
            f"{f.note or 'no inference-aware optimum'}."
    saved = 1 - f.optimal_flops / f.chinchilla_flops
    return s + (f" To reach {f.best}'s loss ({f.target_loss:.4g}) and serve {served}, the inference-aware optimum "
                f"(Sardana et al. 2024) is {n_params(f.optimal_params)} parameters on {n_params(f.optimal_tokens)} "
                f"tokens: {f.optimal_flops:.3g} training + inference FLOPs against {f.chinchilla_flops:.3g} for the "
                f"Chinchilla-optimal model of that loss ({n_params(f.chinchilla_params)} on "
                f"{n_params(f.chinchilla_tokens)} tokens), {100 * saved:.1f}% saved" + _nd_outside(f) + ".")


def floor_unmeasured(E: float, lowest: float) -> str:
    """An irreducible loss fitted near zero (under 1% of the best value reached) is not a measured floor:
    the runs are too far above it for the fit to place it."""
    return (" (near zero: these runs are too far above their floor to measure the irreducible loss)"
            if E < 0.01 * lowest else "")


def _floor_unmeasured(f: LadderNDLaw) -> str:
    return floor_unmeasured(f.E, f.target_loss)


def _nd_outside(f: LadderNDLaw) -> str:
    if not f.extrapolated:
        return ""
    return (f" ({_names(list(f.extrapolated))} lie{'s' if len(f.extrapolated) == 1 else ''} outside the ladder's "
            "sizes or token budgets: extrapolated)")


def _worth_lead(f: ComputeWorth) -> str:
    if f.kind == "moe":
        return f"Architecture: {f.name} ({n_params(f.params_active)} active of {n_params(f.params_total)} parameters)"
    if f.kind == "distilled":
        return f"Distillation: {f.name} (its FLOPs include the teacher's forward passes, not the teacher's training)"
    if "+" not in f.kind and f.kind != "other data":
        return f"Data: {f.name} ({f.kind} data)"
    return f"{f.name} ({f.kind})"


def _compute_worth(f: ComputeWorth) -> str:
    extra = "; outside the ladder's FLOPs range, so extrapolated" if f.extrapolated else ""
    rung = f"{f.matched}, the dense rung it matches" if f.matched else "the dense rung it matches"
    wall = f", at {f.wall_ratio:.2f}× the wall time of {rung}" if f.wall_ratio is not None else ""
    return (f"{_worth_lead(f)} was worth {times(f.multiplier)} dense compute "
            f"({interval(f.low, f.high, times, f.interval_note)}{extra}){wall}{_size_equivalent(f)}.")


def _size_equivalent(f: ComputeWorth) -> str:
    """The same alternative measured a second way: the dense size that reaches its held-out score."""
    if not f.size_equivalent or not math.isfinite(f.size_equivalent[0]):
        return ""
    size, low, high = f.size_equivalent
    return (f"; on held-out bits per byte it matched a dense model of {n_params(size)} parameters, "
            f"{size / f.params_active:.3g}× its {n_params(f.params_active)} active{_which_to_believe(f)}")


def _which_to_believe(f: ComputeWorth) -> str:
    """Two measures of one alternative that point in opposite directions: say which holds, and why."""
    size, low, high = (v / f.params_active for v in f.size_equivalent or (math.nan,) * 3)
    if not (math.isfinite(size) and math.isfinite(f.multiplier)) or (size > 1) == (f.multiplier > 1):
        return ""
    excludes = {"the compute multiplier (validation loss)": not (f.low <= 1 <= f.high),
                "the size equivalent (held-out bits per byte)": math.isfinite(low) and not (low <= 1 <= high)}
    firm = [name for name, ok in excludes.items() if ok]
    if len(firm) == 1:
        return (f" — the two measures point opposite ways; believe {firm[0]}, the only one whose interval "
                "excludes 1×")
    if not firm:
        return (" — the two measures point opposite ways and neither interval excludes 1×: this run cannot tell "
                "the alternative from dense scaling")
    return " — the two measures point opposite ways, each with an interval excluding 1×: the data sets disagree"


def _doubling_gain(s: DoublingGain) -> str:
    return (f"Scale: going from {n_params(s.params_small)} to {n_params(s.params_large)} parameters "
            f"({s.doublings:.2f} doublings) took {s.metric} from {s.value_small:.3f} to {s.value_large:.3f}: "
            f"{abs(s.gain_per_doubling):.3f} {s.unit} {'less' if s.gain_per_doubling >= 0 else 'more'} per doubling"
            + (f" ({doubling_ci(s)})." if s.n_items else "."))


def doubling_ci(s: DoublingGain) -> str:
    """The interval on the gain per doubling, oriented as the gain is worded (less/more), over its documents; or
    why there is none (under MIN_INTERVAL_ITEMS documents its 95% is not shown to hold)."""
    from beyondscale.analysis.paired import MIN_INTERVAL_ITEMS

    if not (math.isfinite(s.ci_low) and math.isfinite(s.ci_high)):
        return f"no interval: {s.n_items} documents, under the {MIN_INTERVAL_ITEMS} at which its 95% was checked to hold"
    lo, hi = (s.ci_low, s.ci_high) if s.gain_per_doubling >= 0 else (-s.ci_high, -s.ci_low)
    return f"95% CI {lo:.3g} to {hi:.3g}"


def _placement(p: Placement) -> str:
    side = "below (better than)" if p.value < p.low else "above (worse than)" if p.value > p.high else "within the band of"
    return (f"{p.name} ({n_params(p.params)} parameters, {p.beyond:.3g}× the largest rung) scored {p.value:.3f} bits per "
            f"byte on the held-out source; the ladder's law extrapolated to its size predicts {p.predicted:.3f} "
            f"({p.low:.3f} to {p.high:.3f}), so it sits {side} the ladder's curve.")


def _probe_trend(t: ProbeTrend) -> str:
    return (f"{t.what} went from {t.value_small:.3g} {t.unit} ({t.small}, {n_params(t.params_small)}) to "
            f"{t.value_large:.3g} {t.unit} ({t.large}, {n_params(t.params_large)}) across the ladder.")


def _not_compared(f: LadderNotCompared) -> str:
    return f"Not compared with the trained ladder: {_names(list(f.models))} ({f.reason})."


def _quantised(f: QuantisedVariant) -> str:
    kept = f" kept {100 * f.kept:.1f}% of {f.original}'s accuracy," if f.kept is not None \
        else f" had, against {f.original},"
    losses = "; ".join(f"{c.task} {effect_text(c.metric, c.delta, c.accuracy_like)}, {p_text(c.p)}" if c.p else c.task
                       for c in f.losses)
    held = (f"no significant loss on {f.n_tasks - len(f.losses)} of {f.n_tasks} tasks"
            + (f" (worse on {losses})" if losses else ""))
    cost = [f"{v:.2g}× the {what}" for v, what in ((f.speed_ratio, "speed (tokens/s)"),
                                                    (f.memory_ratio, "peak memory"), (f.weights_ratio, "weights"))
            if math.isfinite(v)]
    at = ", ".join(cost[:-1]) + " and " + cost[-1] if len(cost) > 1 else "".join(cost)
    return f"Cheaper, not bigger: {f.variant}{kept} {held}" + (f", at {at}" if at else "") + "."


_WORDERS: dict[type, Callable] = {
    ConstraintBinds: lambda f: f"{f.model} is ruled out by the constraints: {'; '.join(f.fails)}.",
    Recommendation: _recommendation, NoDominantModel: _no_dominant, FramingWarning: _framing,
    SizeStep: _size_step,
    SignificantDifference: lambda f: _win(f.win) + ", although it is smaller.",
    SameMeasurement: _same, ReturnsFlatten: _flatten, NegativeReturns: _negative, VersionMismatch: _version,
    UnevenReturns: _uneven, Backtest: _backtest,
    MixedVersions: _mixed_versions, LadderLaw: _ladder_law, ComputeWorth: _compute_worth,
    LadderNotCompared: _not_compared, QuantisedVariant: _quantised, LadderNDLaw: _ladder_nd,
    DoublingGain: _doubling_gain, Placement: _placement, ProbeTrend: _probe_trend,
    NotComputed: lambda f: f"No {f.what}: {f.reason}.",
}


def register(kind: type, worder: Callable[[Any], str]) -> None:
    """Word a new kind of finding. Every finding of beyondscale is worded above; a second wording of one
    kind is refused, so one sentence has one wording."""
    if kind in _WORDERS:
        raise ValueError(f"{kind.__name__} is already worded; one wording per finding")
    _WORDERS[kind] = worder


def word(f: Finding) -> str:
    """One finding as one sentence."""
    return _WORDERS[type(f)](f)


def words(findings: Iterable[Finding]) -> list[str]:
    """The verdict: every finding worded, in order, then the one note on what Holm adjusted over."""
    findings = list(findings)
    note = holm_note(findings)
    return [word(f) for f in findings] + ([note] if note else [])


def holm_note(findings: list[Finding]) -> str:
    """One sentence for every '(Holm: ...)' of the verdict: the most tasks a pair of models was compared on."""
    tests = [n for f in findings for n in _holm_counts(dataclasses.asdict(f))]
    if not tests or max(tests) <= 1:
        return ""
    return (f"Holm: each p after the word Holm is adjusted over the tasks the two models were compared on (up to "
            f"{max(tests)}), so the chance of any false significant result stays under 5%; the paired table gives "
            "both p values.")


def _holm_counts(value: Any) -> list[int]:
    """The task counts of every Holm-adjusted PValue inside a finding (in its asdict form)."""
    if isinstance(value, dict):
        if {"raw", "adjusted", "n_tests"} <= set(value):
            return [value["n_tests"]] if value["adjusted"] is not None else []
        return [n for v in value.values() for n in _holm_counts(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _holm_counts(v)]
    return []
