"""What the `beyondscale` commands print on a terminal: rich tables over the values the API returns.

`--json` bypasses all of this (the command prints the JSON document alone on stdout).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (CI logs, README pastes) gets room for the wide tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    return str(value)


def print_frame(frame: Any, columns: list[str] | None = None) -> None:
    """A DataFrame as a plain table (all columns, or `columns`)."""
    table = Table()
    cols = columns or list(frame.columns)
    for col in cols:
        table.add_column(col)
    for row in frame[cols].itertuples(index=False):
        table.add_row(*(fmt(v) if columns else str(v) for v in row))
    out.print(table)


def print_eval_table(result: Any) -> None:
    table = Table(title=f"run {result.run_id}", title_justify="left")
    for col in ("Model", "Task", "Metric", "Value", "", "Stderr"):
        table.add_column(col, justify="right" if col in ("Value", "Stderr") else "left")
    for pair in result.results:
        names = [m for m in pair.metrics if not m.endswith("_stderr")]
        for i, name in enumerate(names):
            table.add_row(pair.model if i == 0 else "", pair.task if i == 0 else "", name,
                          fmt(pair.metrics[name]), "±", fmt(pair.metrics.get(f"{name}_stderr")))
    out.print(table)
    eff = Table(title="cost of the answers", title_justify="left")
    for col in ("Model", "Task", "Items", "Seconds", "Tokens/s", "ms/item", "Peak MB", "J/token", "gCO2e/1k tok",
                "$/1M tok", "$/correct", "MFU", "Energy source"):
        eff.add_column(col, justify="left" if col in ("Model", "Task", "Energy source") else "right")
    for pair in result.results:
        e = pair.efficiency
        est = " (est.)" if str(e.get("energy_source", "")).startswith("estimate") else ""
        peak = e.get("peak_memory_bytes")
        eff.add_row(
            pair.model, pair.task, str(pair.n_items), fmt(pair.seconds, 1), fmt(e.get("tokens_per_s"), 1),
            fmt(e.get("ms_per_item", e.get("latency_ms_per_item")), 1), fmt(peak / 2**20 if peak else None, 0),
            fmt(e.get("joules_per_token")) + est, fmt(e.get("gco2e_per_1k_tokens")) + est,
            fmt(e.get("usd_per_1m_tokens")), fmt(e.get("usd_per_correct")), fmt(e.get("mfu")),
            str(e.get("energy_source", "—")),
        )
    out.print(eff)


_ANALYSIS_TABLES = (
    ("paired", ["task", "metric", "model_a", "model_b", "n_items", "effect", "ci_low", "ci_high", "p", "p_holm",
                "better", "flag"]),
    ("marginal", ["task", "metric", "axis", "from_model", "to_model", "gain", "gain_per_doubling", "source"]),
    ("pareto", ["task", "metric", "cost_axis", "model", "quality", "cost", "on_frontier"]),
)


def print_analysis(result: Any, brief: bool = False) -> None:
    """The verdict, then the paired tests (and, unless `brief`, marginal gains and Pareto frontiers)."""
    from beyondscale.report.tables import paired_for_terminal

    head = result.headline
    if head:
        out.rule("the answer")
        for line in head:
            out.print(line, highlight=False)
    out.rule("verdict: the details" if head else "verdict")
    for line in result.verdict:
        out.print(f"• {line}", highlight=False)
    if result.recommendation:
        out.print(f"recommendation: {result.recommendation.get('model')} — {result.recommendation.get('reason')}",
                  highlight=False)
    for name, cols in _ANALYSIS_TABLES[:1] if brief else _ANALYSIS_TABLES:
        frame = getattr(result, name)
        if name == "paired" and not frame.empty:
            frame = paired_for_terminal(frame)  # p and Holm p worded as the verdict prints them
        if frame.empty:
            continue
        table = Table(title=name, title_justify="left")
        present = [c for c in cols if c in frame.columns]
        for col in present:
            table.add_column(col)
        for row in frame[present].head(40).itertuples(index=False):
            table.add_row(*(fmt(v) for v in row))
        out.print(table)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)


def print_fit(doc: dict[str, Any]) -> None:
    """The fit in words (as `analyze` words a curve), the fitted constants with their intervals, then the
    compute- and inference-optimal tables."""
    for line in doc.get("lines", []):
        out.print(f"• {line}", highlight=False)
    table = Table(title=f"fit on {doc.get('n_points')} points", title_justify="left")
    for col in ("constant", "value", "95% CI"):
        table.add_column(col)
    for name, value in doc.items():
        if name not in ("floor", "A", "alpha", "B", "beta") or not isinstance(value, int | float):
            continue
        lo, hi = (doc.get("ci") or {}).get(name, (None, None))
        table.add_row(name, fmt(value), f"[{fmt(lo)}, {fmt(hi)}]")
    out.print(table)
    if doc.get("compute_optimal"):
        alloc = Table(title="compute-optimal allocation (C = 6 N D)", title_justify="left")
        for col in ("C (FLOPs)", "N_opt (params)", "D_opt (tokens)", "tokens per param"):
            alloc.add_column(col, justify="right")
        for row in doc["compute_optimal"]:
            alloc.add_row(f"{row['C']:.0e}", f"{row['N_opt']:.3g}", f"{row['D_opt']:.3g}",
                          f"{row['D_opt'] / row['N_opt']:.1f}")
        out.print(alloc)
    if doc.get("inference_optimal"):
        out.print(inference_table(doc["inference_optimal"], doc["inference_tokens"]))


def inference_table(rows: list[dict], inference_tokens: float) -> Table:
    """`fit --inference-tokens`: Chinchilla-optimal vs inference-aware model of equal loss, per budget."""
    table = Table(title=f"inference-aware optimum for {inference_tokens:.3g} served tokens "
                        "(6 N D train + 2 N D_inference, Sardana et al. 2024)", title_justify="left")
    for col in ("C (FLOPs)", "loss", "N chinchilla", "N optimal", "D optimal", "FLOPs saved", "saved"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['C']:.0e}", f"{r['loss']:.4f}", f"{r['N_chinchilla']:.3g}", f"{r['N_inference_optimal']:.3g}",
                      f"{r['D_inference_optimal']:.3g}", f"{r['flops_saved']:.3g}", f"{r['fraction_saved']:.1%}")
    return table


def _spread(d: Any, digits: int = 1) -> str:
    return "—" if not d else f"{d['median']:.{digits}f} ± {d['std']:.{digits}f}"


def print_bench(frame: Any) -> None:
    table = Table(title="generation benchmark (median ± std over repetitions)", title_justify="left")
    for col in ("Model", "Prompt", "New", "TTFT ms", "Prefill tok/s", "Decode tok/s", "Token ms p50", "p95",
                "Peak MB", "Prefill J", "J/generated token (decode)", "Energy source"):
        table.add_column(col, justify="left" if col in ("Model", "Energy source") else "right")
    for r in frame.to_dict(orient="records"):
        peak = r.get("peak_gpu_bytes") or r.get("peak_rss_bytes")
        est = " (est.)" if r.get("energy_estimated") else ""
        table.add_row(r["model"], str(r["prompt_tokens"]), str(r["new_tokens"]), _spread(r["ttft_ms"]),
                      _spread(r["prefill_tokens_per_s"]), _spread(r["decode_tokens_per_s"]),
                      fmt(r["token_latency_ms_p50"], 1), fmt(r["token_latency_ms_p95"], 1),
                      fmt(peak / 2**20 if peak else None, 0), _spread(r.get("prefill_energy_j"), 3) + est,
                      _spread(r["energy_j_per_generated_token"], 3) + est, str(r["energy_source"]))
    out.print(table)
