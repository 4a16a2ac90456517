"""Number formatting and column vocabulary shared by the HTML, Markdown and JSON renderers."""

from __future__ import annotations

import math
from typing import Any

# Axes of the returns curves (x) and cost axes of the Pareto plots, with human labels.
AXIS_LABELS: dict[str, str] = {
    "params_total": "total parameters",
    "params_non_embedding": "non-embedding parameters",
    "params_embedding": "embedding parameters",
    "params_active": "active parameters",
    "flops_per_token": "FLOPs per token",
    "training_tokens": "training tokens",
    "training_flops": "training FLOPs",
    "bytes_on_disk": "bytes on disk",
    "tokens_per_s": "tokens / s",
    "ms_per_item": "ms / item (batch time)",
    "latency_ms_per_item": "ms / item (batch time)",
    "peak_memory_bytes": "peak memory, bytes",
    "joules_per_token": "energy, J / token",
    "energy_j": "energy, J",
    "gco2e_per_1k_tokens": "gCO2e / 1k tokens",
    "usd_per_1m_tokens": "$ / 1M tokens",
    "usd_per_correct": "$ / correct answer",
    "mfu": "MFU",
    "seconds": "seconds",
}

# Metrics where a lower value is better (everything else: higher is better).
LOWER_IS_BETTER = {
    "bits_per_byte", "byte_perplexity", "word_perplexity", "perplexity", "ece", "brier", "brier_score", "loss",
    "ms_per_item", "latency_ms_per_item", "peak_memory_bytes", "joules_per_token", "energy_j", "gco2e_per_1k_tokens",
    "usd_per_1m_tokens", "usd_per_correct", "seconds", "params_total", "params_active", "flops_per_token",
}

# Which source column vouches for which value column ("est." badge when the source starts with "estimate").
SOURCE_OF: dict[str, tuple[str, ...]] = {
    "energy_j": ("energy_source",),
    "joules_per_token": ("energy_source",),
    "gco2e_per_1k_tokens": ("carbon_source", "energy_source"),
    "usd_per_1m_tokens": ("cost_source",),
    "usd_per_correct": ("cost_source",),
    "mfu": ("peak_flops_source", "flops_source"),
}


def axis_label(name: str) -> str:
    """Human label for a size or cost axis (falls back to the column name)."""
    return AXIS_LABELS.get(name, name.replace("_", " "))


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas NA and empty strings."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    try:
        return bool(value != value)  # NaN, pd.NA raises TypeError on bool()
    except (TypeError, ValueError):
        return True


def as_float(value: Any) -> float | None:
    """A finite float or None."""
    if is_missing(value) or isinstance(value, bool | str):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def sig(value: Any, digits: int = 3) -> str:
    """Significant-digit formatting; empty string for missing values."""
    x = as_float(value)
    if x is None:
        return "" if is_missing(value) else str(value)
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if -4 <= mag < 6:
        decimals = max(digits - 1 - mag, 0)
        return f"{x:,.{decimals}f}"
    return f"{x:.{digits - 1}e}"


def fixed(value: Any, decimals: int = 3) -> str:
    """Fixed-point formatting; empty string for missing values."""
    x = as_float(value)
    if x is None:
        return "" if is_missing(value) else str(value)
    return f"{x:.{decimals}f}"


def count(value: Any) -> str:
    """1234567 -> '1.23M' (parameters, tokens, FLOPs)."""
    x = as_float(value)
    if x is None:
        return "" if is_missing(value) else str(value)
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def nbytes(value: Any) -> str:
    """Bytes in binary units."""
    x = as_float(value)
    if x is None:
        return "" if is_missing(value) else str(value)
    for div, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(x) >= div:
            return f"{x / div:.3g} {suffix}"
    return f"{x:.0f} B"


def percent(value: Any) -> str:
    """A fraction as a percentage."""
    x = as_float(value)
    if x is None:
        return "" if is_missing(value) else str(value)
    return f"{100 * x:.3g}%"


def pvalue(value: Any, floor: float = 0.0) -> str:
    """p-values as the verdict words them, without the 'p': '<0.001', '0.031', '<0.005' at a bootstrap floor."""
    from beyondscale.analysis.wording import format_p

    x = as_float(value)
    if x is None:
        return "" if is_missing(value) else str(value)
    return format_p(x, floor).removeprefix("p=").removeprefix("p")


def text(value: Any) -> str:
    """Any cell value as text (missing -> '')."""
    if is_missing(value):
        return ""
    if isinstance(value, float):
        return sig(value, 4)
    return str(value)


# column -> (label, formatter, tooltip)
COLUMNS: dict[str, tuple[str, Any, str]] = {
    "model": ("model", text, "display name"),
    "task": ("task", text, ""),
    "params_total": ("params", count, "total parameters, embeddings included"),
    "params_active": ("active params", count, "parameters used per token (differs from total for MoE)"),
    "params_non_embedding": ("non-emb. params", count, "parameters outside the embedding matrices"),
    "flops_per_token": ("FLOPs/token", count, "forward FLOPs per token (about 2 x active non-embedding params)"),
    "seconds": ("seconds", lambda v: sig(v, 3), "wall-clock seconds of scoring"),
    "tokens_in": ("tokens in", count, "prompt tokens processed"),
    "tokens_out": ("tokens out", count, "tokens generated"),
    "tokens_per_s": ("tokens/s", lambda v: sig(v, 3), "tokens processed per wall-clock second"),
    "ms_per_item": ("ms/item (batch time)", lambda v: sig(v, 3),
                    "wall-clock time of the batched scoring run per item: not a per-request latency"),
    "latency_ms_per_item": ("ms/item (batch time)", lambda v: sig(v, 3),
                            "wall-clock time of the batched scoring run per item: not a per-request latency"),
    "family": ("family", text, "model family: models of different families differ in more than size"),
    "architecture": ("architecture", text, "model class (transformers architecture name)"),
    "vocab_size": ("vocab", lambda v: f"{int(as_float(v)):,}" if as_float(v) is not None else "",
                   "tokenizer vocabulary size"),
    "dtype": ("dtype", text, "weight data type"),
    "quantization": ("quant.", text, "weight quantisation (GGUF type, bitsandbytes ...)"),
    "bytes_in_memory": ("weights in memory", nbytes, "bytes the loaded (possibly quantised) weights occupy"),
    "peak_memory_bytes": ("peak memory", nbytes, "peak resident (CPU) or allocated (GPU) memory"),
    "energy_j": ("energy J", lambda v: sig(v, 3), "energy over the run, joules"),
    "energy_source": ("energy source", text, "where the energy figure comes from"),
    "carbon_source": ("carbon source", text, "grid intensity and PUE used"),
    "energy_scope": ("energy scope", text,
                     "process: this process only; whole-machine / whole-gpu: the counter includes other processes"),
    "model_flops": ("model FLOPs", lambda v: sig(v, 3), "model FLOPs counted from the context lengths processed"),
    "flops_source": ("FLOPs source", text, "counted from the contexts run, or an estimate"),
    "cost_source": ("cost source", text, "price used for the cost figures"),
    "joules_per_token": ("J/token", lambda v: sig(v, 3), "joules per processed token"),
    "gco2e_per_1k_tokens": ("gCO2e/1k tok", lambda v: sig(v, 3), "grams CO2-equivalent per 1,000 tokens"),
    "usd_per_1m_tokens": ("$/1M tok", lambda v: sig(v, 3), "US dollars per million tokens"),
    "usd_per_correct": ("$/correct", lambda v: sig(v, 3), "US dollars per correctly answered item"),
    "mfu": ("MFU", percent, "model FLOPs utilisation: achieved / peak FLOP/s"),
    "C": ("compute C (FLOPs)", lambda v: sig(v, 3), "training compute budget"),
    "N_opt": ("optimal params N", count, "loss-minimising parameter count at C"),
    "D_opt": ("optimal tokens D", count, "loss-minimising training tokens at C"),
}


def column_label(name: str) -> str:
    """Table header for a frame column."""
    if name in COLUMNS:
        return COLUMNS[name][0]
    return name.replace("_", " ")


def column_tooltip(name: str) -> str:
    """Header tooltip for a frame column."""
    return COLUMNS[name][2] if name in COLUMNS else ""


def format_cell(name: str, value: Any) -> str:
    """Format one cell of a frame column."""
    if name in COLUMNS:
        return COLUMNS[name][1](value)
    return text(value)


def is_estimate(source: Any) -> bool:
    """True when a source (or any '+'/','-joined part, e.g. 'nvml+estimate:tdp', 'estimate:tdp,rapl') is an estimate."""
    if not isinstance(source, str):
        return False
    return any(part.strip().lower().startswith("estimate") for part in source.replace(",", "+").split("+"))


def metric_of(column: str) -> str:
    """'task/metric' -> 'metric'."""
    return column.rsplit("/", 1)[-1]
