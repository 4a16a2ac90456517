"""Efficiency figures from a Measurement: throughput, latency, energy, carbon, money, MFU.

Every figure that rests on an estimate or a default carries its source next to it
(`energy_source`, `carbon_source`, `cost_source`, `peak_flops_source`).
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
    wall = m.wall_s
    tokens = m.tokens
    energy = m.energy_j

    grid = costs.intensity()
    gco2 = None if energy is None else grams_co2e(energy, grid.gco2_per_kwh, costs.pue)
    price = costs.price(m.device, m.hardware, m.hardware_units)
    usd = None if price.usd_per_hour is None else wall / 3600.0 * price.usd_per_hour

    achieved = None
    if flops_per_token is not None and wall > 0:
        achieved = flops_per_token * tokens / wall
    peak = peak_flops.value if peak_flops is not None else None
    correct = n_correct if n_correct else None  # 0 correct answers: cost per correct is undefined

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
        "latency_ms_per_item": _div(wall * 1000.0, n_items),
        "peak_memory_bytes": m.peak_gpu_bytes if m.peak_gpu_bytes is not None else m.peak_rss_bytes,
        "peak_rss_bytes": m.peak_rss_bytes,
        "peak_gpu_bytes": m.peak_gpu_bytes,
        "energy_j": energy,
        "energy_source": m.energy_source,
        "energy_estimated": m.energy_estimated,
        "joules_per_token": _div(energy, tokens),
        "joules_per_correct": _div(energy, correct),
        "gco2e": gco2,
        "gco2e_per_1k_tokens": None if gco2 is None else _div(gco2 * 1000.0, tokens),
        "grid_gco2_per_kwh": grid.gco2_per_kwh,
        "pue": costs.pue,
        "carbon_source": f"{grid.source}; PUE {costs.pue:g}; energy {m.energy_source}",
        "usd": usd,
        "usd_per_hour": price.usd_per_hour,
        "usd_per_1m_tokens": None if usd is None else _div(usd * 1e6, tokens),
        "usd_per_correct": _div(usd, correct),
        "cost_source": price.source,
        "flops_per_token": flops_per_token,
        "achieved_flops": achieved,
        "peak_flops": peak,
        "mfu": _div(achieved, peak),
        "peak_flops_source": peak_flops.source if peak_flops is not None else None,
        "peak_flops_probe": peak_flops.probe_flops if peak_flops is not None else None,
        "peak_flops_spec": peak_flops.spec_flops if peak_flops is not None else None,
    }
