"""Generation benchmark in the style of llama-bench / optimum-benchmark.

For each prompt length: a seeded synthetic prompt of exactly N token ids, one prefill forward, then
`new_tokens` greedy decode steps with the KV cache, each step timed on its own. That manual loop is what
makes time-to-first-token and per-token latencies real numbers rather than averages of `generate()`.
EOS is ignored so every repetition decodes exactly `new_tokens` tokens.
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
    peak memory and energy per generated token, as median and spread over `repetitions`."""
    import torch

    if new_tokens < 1:
        raise ValueError("new_tokens must be >= 1")
    if repetitions < 1:
        raise ValueError("repetitions must be >= 1")
    device = _device_of(model)
    is_cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if is_cuda else (lambda: None)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    model.eval()
    rows: list[dict[str, Any]] = []
    for n_prompt in prompt_tokens:
        if n_prompt < 1:
            raise ValueError("prompt lengths must be >= 1")
        ids = torch.tensor([synthetic_prompt(tokenizer, int(n_prompt), seed=seed, vocab_size=vocab)], device=device)
        ttft: list[float] = []
        prefill_tps: list[float] = []
        decode_tps: list[float] = []
        step_lat: list[float] = []
        joules_per_tok: list[float] = []
        total: Measurement | None = None
        for rep in range(warmup + repetitions):
            with meter.measure() as m:
                t_prefill, steps, _ = _generate(model, ids, new_tokens, sync)
                m.add_tokens(int(n_prompt), new_tokens)
            if rep < warmup:
                continue
            res = m.result
            assert res is not None
            total = res if total is None else total + res
            ttft.append(t_prefill)
            prefill_tps.append(n_prompt / t_prefill if t_prefill > 0 else float("inf"))
            decode_s = sum(steps)
            if steps:
                decode_tps.append(len(steps) / decode_s if decode_s > 0 else float("inf"))
            step_lat.extend(steps)
            if res.energy_j is not None:
                joules_per_tok.append(res.energy_j / new_tokens)
        assert total is not None
        row: dict[str, Any] = {
            "prompt_tokens": int(n_prompt),
            "new_tokens": new_tokens,
            "repetitions": repetitions,
            "device": str(device),
            "ttft_ms": {k: v * 1000 for k, v in _spread(ttft).items()},
            "prefill_tokens_per_s": _spread(prefill_tps),
            "decode_tokens_per_s": _spread(decode_tps) if decode_tps else None,
            "token_latency_ms_p50": _percentile(step_lat, 50) * 1000 if step_lat else None,
            "token_latency_ms_p95": _percentile(step_lat, 95) * 1000 if step_lat else None,
            "peak_rss_bytes": total.peak_rss_bytes,
            "peak_gpu_bytes": total.peak_gpu_bytes,
            "energy_j_per_generated_token": _spread(joules_per_tok) if joules_per_tok else None,
            "energy_source": total.energy_source,
            "energy_estimated": total.energy_estimated,
        }
        rows.append(row)
    return rows


def _generate(model: Any, ids: Any, new_tokens: int, sync: Any) -> tuple[float, list[float], list[int]]:
    """Greedy decode with the KV cache: (prefill seconds incl. first token, per-step seconds, tokens)."""
    import torch

    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=True)
        nxt = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        sync()
        t_prefill = time.perf_counter() - t0
        past = out.past_key_values
        steps: list[float] = []
        tokens = [nxt]
        for _ in range(new_tokens - 1):
            t = time.perf_counter()
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            nxt = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            sync()
            steps.append(time.perf_counter() - t)
            tokens.append(nxt)
            past = out.past_key_values
    return t_prefill, steps, [int(t) for t in tokens]
