"""Efficiency figures from a Measurement: throughput, time per item, energy, carbon, money, MFU.

Every figure that rests on an estimate or a default carries its source next to it, starting with
"estimate" when it is one (`energy_source`, `carbon_source`, `cost_source`, `flops_source`;
`peak_flops_source` names the probe or spec sheet). `energy_scope` says whether the joules are this
process's ("process") or a whole-machine / whole-GPU counter's, which include other processes.
"""

from __future__ import annotations

from typing import Any

from beyondscale.errors import UserError
from beyondscale.measure.carbon import grams_co2e
from beyondscale.measure.cost import CostConfig
from beyondscale.measure.flops import PeakFlops
from beyondscale.measure.meter import Measurement


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def derive(
    measurement: Measurement,
    *,
    flops_per_token: float | None = None,
    n_items: int,
    n_correct: int | None = None,
    costs: CostConfig | None = None,
    peak_flops: PeakFlops | None = None,
    facts: Any = None,
) -> dict[str, Any]:
    """Derived efficiency figures for one (model, task) total.

    `flops_per_token` is forward FLOPs per token (about 2 x active parameters); when None it is taken
    from `facts.flops_per_token` if given. Figures that cannot be computed (no correct answers, no
    price, no FLOP count) are None, never 0.
    """
    if n_items < 0:
        raise UserError(f"n_items must be >= 0, got {n_items}")
    if n_correct is not None and (n_correct < 0 or n_correct > max(n_items, 0)):
        raise UserError(f"n_correct must be between 0 and n_items ({n_items}), got {n_correct}")
    costs = costs or CostConfig()
    if flops_per_token is None and facts is not None:
        flops_per_token = getattr(facts, "flops_per_token", None)
    m = measurement
    wall, tokens, energy = m.wall_s, m.tokens, m.energy_j
    price = costs.price(m.device, m.hardware, m.hardware_units)
    usd = None if price.usd_per_hour is None else wall / 3600.0 * price.usd_per_hour
    correct = n_correct if n_correct else None  # 0 correct answers: cost per correct is undefined
    carbon = _carbon(m, costs)
    gco2 = carbon["gco2e"]
    return {
        "seconds": wall,
        "cpu_seconds": m.cpu_s,
        "tokens_in": m.tokens_in,
        "tokens_out": m.tokens_out,
        "n_items": n_items,
        "n_correct": n_correct,
        "prefill_tokens_per_s": _div(m.tokens_in, wall),
        "decode_tokens_per_s": _div(m.tokens_out, wall) if m.tokens_out else None,
        "tokens_per_s": _div(tokens, wall),
        # batch wall time per item (items run batched); per-request latency is what `bench` measures
        "ms_per_item": _div(wall * 1000.0, n_items),
        "peak_memory_bytes": m.peak_gpu_bytes if m.peak_gpu_bytes is not None else m.peak_rss_bytes,
        "peak_rss_bytes": m.peak_rss_bytes,
        "peak_gpu_bytes": m.peak_gpu_bytes,
        "energy_j": energy,
        "energy_source": m.energy_source,
        "energy_estimated": m.energy_estimated,
        "energy_scope": m.energy_scope,
        "joules_per_token": _div(energy, tokens),
        "joules_per_correct": _div(energy, correct),
        **carbon,
        "gco2e_per_1k_tokens": None if gco2 is None else _div(gco2 * 1000.0, tokens),
        "usd": usd,
        "usd_per_hour": price.usd_per_hour,
        "usd_per_1m_tokens": None if usd is None else _div(usd * 1e6, tokens),
        "usd_per_correct": _div(usd, correct),
        "cost_source": price.source,
        **_flop_figures(m, flops_per_token, peak_flops),
    }


def _carbon(m: Measurement, costs: CostConfig) -> dict[str, Any]:
    """gCO2e and its source: an estimate when the grid figure, the PUE or the energy under it is one."""
    grid = costs.intensity()
    pue = costs.pue_value
    gco2 = None if m.energy_j is None else grams_co2e(m.energy_j, grid.gco2_per_kwh, pue)
    estimated = grid.source.startswith("estimate") or costs.pue is None or m.energy_estimated
    kind = "estimate" if estimated else "user"
    return {
        "gco2e": gco2,
        "grid_gco2_per_kwh": grid.gco2_per_kwh,
        "pue": pue,
        "carbon_source": f"{kind}: grid {grid.source}; PUE {pue:g} ({costs.pue_source}); energy {m.energy_source}",
    }


def _flop_figures(m: Measurement, flops_per_token: float | None, peak_flops: PeakFlops | None) -> dict[str, Any]:
    """Achieved FLOP/s and MFU: from the FLOPs the engine counted for the contexts it actually ran, else
    (older rows) flops_per_token at the model's reference context x tokens, labelled an estimate."""
    achieved, source = None, None
    if m.model_flops is not None and m.wall_s > 0:
        achieved, source = m.model_flops / m.wall_s, "counted"
    elif flops_per_token is not None and m.wall_s > 0:
        achieved, source = flops_per_token * m.tokens / m.wall_s, "estimate:flops_per_token x tokens"
    peak = peak_flops.value if peak_flops is not None else None
    return {
        "flops_per_token": flops_per_token,
        "model_flops": m.model_flops,
        "flops_source": source,
        "achieved_flops": achieved,
        "peak_flops": peak,
        "mfu": _div(achieved, peak),
        "peak_flops_source": peak_flops.source if peak_flops is not None else None,
        "peak_flops_probe": peak_flops.probe_flops if peak_flops is not None else None,
        "peak_flops_spec": peak_flops.spec_flops if peak_flops is not None else None,
    }
