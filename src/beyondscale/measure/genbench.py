"""Generation benchmark in the style of llama-bench / optimum-benchmark.

For each prompt length: a seeded synthetic prompt of exactly N token ids, one prefill forward, then
`new_tokens` greedy decode steps with the KV cache, each step timed on its own. That manual loop is what
makes time-to-first-token and per-token latencies real numbers rather than averages of `generate()`.
EOS is ignored so every repetition decodes exactly `new_tokens` tokens. The prefill projects only its
last position onto the vocabulary (`logits_to_keep=1`, as `generate()` does) and is measured as its own
block: its energy is reported apart, and energy per generated token covers the decode steps only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from beyondscale.measure.meter import Measurement, Meter


def _percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) without numpy."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _spread(xs: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(xs),
        "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "min": min(xs),
        "max": max(xs),
    }


def synthetic_prompt(tokenizer: Any, n: int, *, seed: int = 0, vocab_size: int | None = None) -> list[int]:
    """Exactly `n` random token ids (seeded), avoiding the tokenizer's special tokens."""
    import torch

    if vocab_size is None:
        vocab_size = len(tokenizer) if tokenizer is not None else 32000
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    gen = torch.Generator().manual_seed(seed)
    out: list[int] = []
    while len(out) < n:
        for t in torch.randint(0, vocab_size, (n,), generator=gen).tolist():
            if t not in special:
                out.append(t)
                if len(out) == n:
                    break
    return out


def _device_of(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        import torch

        return torch.device("cpu")


def bench_generation(
    model: Any,
    tokenizer: Any,
    *,
    prompt_tokens: Sequence[int],
    new_tokens: int,
    repetitions: int = 5,
    warmup: int = 1,
    meter: Meter,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per prompt length: TTFT, prefill and decode tokens/s, per-token latency p50/p95,
    peak memory, prefill energy and energy per generated token (decode only), as median and spread
    over `repetitions`."""
    import torch

    if new_tokens < 1:
        raise ValueError("new_tokens must be >= 1")
    if repetitions < 1:
        raise ValueError("repetitions must be >= 1")
    device = _device_of(model)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    model.eval()
    rows: list[dict[str, Any]] = []
    for n_prompt in prompt_tokens:
        if n_prompt < 1:
            raise ValueError("prompt lengths must be >= 1")
        ids = torch.tensor([synthetic_prompt(tokenizer, int(n_prompt), seed=seed, vocab_size=vocab)], device=device)
        samples = _Samples()
        for rep in range(warmup + repetitions):
            prefill, decode, t_prefill, steps = _measured_rep(model, ids, new_tokens, sync, meter)
            if rep >= warmup:
                samples.add(int(n_prompt), prefill, decode, t_prefill, steps)
        rows.append({"prompt_tokens": int(n_prompt), "new_tokens": new_tokens, "repetitions": repetitions,
                     "device": str(device), **samples.row()})
    return rows


def _measured_rep(model: Any, ids: Any, new_tokens: int, sync: Any, meter: Meter):
    """Prefill and decode as two measured blocks, so decode energy per token excludes the prefill."""
    with meter.measure() as mp:
        t_prefill, nxt, cache = _prefill(model, ids, sync)
        mp.add_tokens(int(ids.shape[1]), 1)
    with meter.measure() as md:
        steps, _ = _decode(model, nxt, cache, new_tokens - 1, sync)
        md.add_tokens(0, len(steps))
    assert mp.result is not None and md.result is not None
    return mp.result, md.result, t_prefill, steps


class _Samples:
    """Per-repetition figures of one prompt length."""

    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.prefill_tps: list[float] = []
        self.decode_tps: list[float] = []
        self.step_lat: list[float] = []
        self.prefill_j: list[float] = []
        self.decode_j_per_token: list[float] = []
        self.total: Measurement | None = None

    def add(self, n_prompt: int, prefill: Measurement, decode: Measurement, t_prefill: float,
            steps: list[float]) -> None:
        both = prefill + decode
        self.total = both if self.total is None else self.total + both
        self.ttft.append(t_prefill)
        self.prefill_tps.append(n_prompt / t_prefill if t_prefill > 0 else float("inf"))
        if steps:
            decode_s = sum(steps)
            self.decode_tps.append(len(steps) / decode_s if decode_s > 0 else float("inf"))
            if decode.energy_j is not None:
                self.decode_j_per_token.append(decode.energy_j / len(steps))
        self.step_lat.extend(steps)
        if prefill.energy_j is not None:
            self.prefill_j.append(prefill.energy_j)

    def row(self) -> dict[str, Any]:
        total = self.total
        assert total is not None
        lat = self.step_lat
        return {
            "ttft_ms": {k: v * 1000 for k, v in _spread(self.ttft).items()},
            "prefill_tokens_per_s": _spread(self.prefill_tps),
            "decode_tokens_per_s": _spread(self.decode_tps) if self.decode_tps else None,
            "token_latency_ms_p50": _percentile(lat, 50) * 1000 if lat else None,
            "token_latency_ms_p95": _percentile(lat, 95) * 1000 if lat else None,
            "peak_rss_bytes": total.peak_rss_bytes,
            "peak_gpu_bytes": total.peak_gpu_bytes,
            "prefill_energy_j": _spread(self.prefill_j) if self.prefill_j else None,
            "energy_j_per_generated_token": _spread(self.decode_j_per_token) if self.decode_j_per_token else None,
            "energy_source": total.energy_source,
            "energy_estimated": total.energy_estimated,
            "energy_scope": total.energy_scope,
        }


def _prefill(model: Any, ids: Any, sync: Any) -> tuple[float, Any, Any]:
    """One forward over the prompt, logits at its last position only: (seconds, first token, cache)."""
    import inspect

    import torch

    from beyondscale.engine.cache import output_cache

    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=True, **keep)
        nxt = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        sync()
        return time.perf_counter() - t0, nxt, output_cache(out)


def _decode(model: Any, nxt: Any, cache: Any, steps_wanted: int, sync: Any) -> tuple[list[float], list[Any]]:
    """`steps_wanted` greedy steps with the KV cache, each timed: (per-step seconds, tokens)."""
    import torch

    from beyondscale.engine.cache import cache_kwargs, output_cache

    steps: list[float] = []
    tokens: list[Any] = []
    with torch.inference_mode():
        for _ in range(steps_wanted):
            t = time.perf_counter()
            out = model(input_ids=nxt, use_cache=True, **cache_kwargs(model, cache))
            nxt = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            sync()
            steps.append(time.perf_counter() - t)
            tokens.append(nxt)
            cache = output_cache(out)
    return steps, tokens


def _generate(model: Any, ids: Any, new_tokens: int, sync: Any) -> tuple[float, list[float], list[int]]:
    """Greedy decode with the KV cache: (prefill seconds incl. first token, per-step seconds, tokens)."""
    t_prefill, first, cache = _prefill(model, ids, sync)
    steps, rest = _decode(model, first, cache, new_tokens - 1, sync)
    return t_prefill, steps, [int(t) for t in [first, *rest]]
