"""Peak FLOP/s (spec table, cached probe), environment, and the generation benchmark on a tiny Llama."""

from __future__ import annotations

import json
import types

import pytest

from beyondscale.measure import Meter, bench_generation, environment, peak_flops, spec_flops, synthetic_prompt
from beyondscale.measure import flops as flops_mod


@pytest.mark.parametrize(
    ("name", "dtype", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4),
        ("NVIDIA H100 PCIe", "bfloat16", 756),
        ("NVIDIA H200", "float32", 67),
        ("NVIDIA A100-SXM4-80GB", "bfloat16", 312),
        ("NVIDIA L40S", "bfloat16", 362),
        ("NVIDIA L4", "bfloat16", 121),
        ("Tesla T4", "float16", 65),
    ],
)
def test_spec_table(name: str, dtype: str, tflops: float) -> None:
    got = spec_flops(name, dtype)
    assert got is not None and got[0] == pytest.approx(tflops * 1e12)


def test_spec_unknown() -> None:
    assert spec_flops("Mystery GPU") is None
    assert spec_flops("Tesla T4", "bfloat16") is None  # no bf16 tensor cores


def test_peak_flops_probe_is_cached(tmp_path, monkeypatch) -> None:
    calls = []

    def fake_probe(device: str, dtype: str, seconds: float) -> tuple[float, str]:
        calls.append((device, dtype))
        return 1.25e11, "n=8, fake"

    monkeypatch.setattr(flops_mod, "probe_matmul", fake_probe)
    monkeypatch.setenv("BEYONDSCALE_CACHE", str(tmp_path))
    p1 = peak_flops("cpu")
    p2 = peak_flops("cpu")
    assert calls == [("cpu", "float32")]
    assert p1 == p2 and p1.value == 1.25e11 and p1.spec_flops is None
    assert p1.source.startswith("probe:matmul float32 on cpu")
    stored = json.loads((tmp_path / "peak_flops.json").read_text())
    assert list(stored) == [f"{environment()['environment_key']}|cpu|float32"]
    peak_flops("cpu", refresh=True)
    assert len(calls) == 2


def test_real_probe_is_short_and_positive() -> None:
    flops, detail = flops_mod.probe_matmul("cpu", "float32", seconds=0.05, n=128)
    assert flops > 1e6 and "n=128" in detail


def test_probe_reports_the_fastest_matmul_as_2n3_flops(monkeypatch) -> None:
    """On a scripted clock each matmul takes a known time: the probe's figure is 2 n^3 / the fastest one."""
    import torch

    clock = {"now": 0.0, "calls": 0}
    durations = [0.004, 0.003, 0.0025, 0.005, 0.002, 0.006]  # the first is the warm-up; then cycled
    real_matmul = torch.matmul

    def timed_matmul(a, b):
        clock["now"] += durations[clock["calls"] % len(durations)]
        clock["calls"] += 1
        return real_matmul(a, b)

    monkeypatch.setattr(torch, "matmul", timed_matmul)
    monkeypatch.setattr(flops_mod, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    flops, detail = flops_mod.probe_matmul("cpu", "float32", seconds=0.05, n=64)
    timed = clock["calls"] - 1
    assert timed >= 3 and f"best of {timed}" in detail
    assert flops == pytest.approx(2 * 64**3 / 0.002, rel=1e-9)


def test_environment_is_stable() -> None:
    env = environment()
    for key in ("cpu_model", "logical_cpus", "torch_threads", "python", "torch", "transformers", "os"):
        assert key in env
    assert len(env["environment_key"]) == 16
    from beyondscale.measure.environment import environment_key

    assert environment_key(dict(env, torch_threads=99)) == env["environment_key"]  # volatile facts ignored


def _tiny_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg)


def test_synthetic_prompt_is_exact_and_seeded() -> None:
    class Tok:
        all_special_ids = [0, 1, 2]

        def __len__(self) -> int:
            return 10

    a = synthetic_prompt(Tok(), 37, seed=3)
    assert len(a) == 37 and a == synthetic_prompt(Tok(), 37, seed=3)
    assert not set(a) & {0, 1, 2} and max(a) < 10


def test_bench_generation_tiny_llama(monkeypatch) -> None:
    """On a scripted clock (each forward costs a known time: 2 ms + 1 ms per input token + 0.5 ms per decode
    step already taken) every figure equals the one computed here by hand and with numpy."""
    import numpy as np

    from beyondscale.measure import genbench

    clock = {"now": 0.0, "step": 0}
    model = _tiny_llama()

    def cost(_module, _args, kwargs):
        n = kwargs["input_ids"].shape[1]
        clock["step"] = 0 if n > 1 else clock["step"] + 1  # a prompt of more than one token starts a repetition
        clock["now"] += 0.002 + 0.001 * n + 0.0005 * clock["step"]

    model.register_forward_pre_hook(cost, with_kwargs=True)
    monkeypatch.setattr(genbench, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    rows = bench_generation(model, None, prompt_tokens=[4, 16], new_tokens=5, repetitions=2, warmup=1, meter=Meter())
    assert [r["prompt_tokens"] for r in rows] == [4, 16]
    steps = [0.003 + 0.0005 * k for k in range(1, 5)]  # decode steps 1..4 (prefill gave the first token)
    latencies = np.array(steps * 2)  # two repetitions
    for r in rows:
        n = r["prompt_tokens"]
        ttft = 0.002 + 0.001 * n
        assert r["new_tokens"] == 5 and r["repetitions"] == 2
        assert r["ttft_ms"] == pytest.approx({"median": 1000 * ttft, "std": 0.0, "min": 1000 * ttft,
                                              "max": 1000 * ttft})
        assert r["prefill_tokens_per_s"]["median"] == pytest.approx(n / ttft)
        assert r["decode_tokens_per_s"]["median"] == pytest.approx(4 / sum(steps))
        assert r["token_latency_ms_p50"] == pytest.approx(1000 * np.percentile(latencies, 50))
        assert r["token_latency_ms_p95"] == pytest.approx(1000 * np.percentile(latencies, 95))
        assert r["energy_j_per_generated_token"]["median"] >= 0
        assert r["energy_source"] == "estimate:tdp" and r["energy_estimated"] is True
        assert r["peak_rss_bytes"] >= 0  # above the baseline taken after the model was built


def test_bench_decode_matches_full_forward_greedy() -> None:
    """The KV-cache loop must produce the same greedy tokens as recomputing the whole sequence."""
    import torch

    from beyondscale.measure.genbench import _generate

    model = _tiny_llama().eval()
    ids = torch.tensor([synthetic_prompt(None, 6, vocab_size=96)])
    _, steps, cached = _generate(model, ids, 5, lambda: None)
    assert len(cached) == 5 and len(steps) == 4
    seq, full = ids, []
    with torch.inference_mode():
        for _ in range(5):
            t = model(input_ids=seq).logits[:, -1:].argmax(-1)
            full.append(int(t))
            seq = torch.cat([seq, t], dim=1)
    assert cached == full


def test_bench_prefill_projects_only_the_last_position() -> None:
    model = _tiny_llama().eval()
    widths: list[int] = []
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: widths.append(inp[0].shape[1]))
    try:
        bench_generation(model, None, prompt_tokens=[16], new_tokens=3, repetitions=1, warmup=0, meter=Meter())
    finally:
        hook.remove()
    assert widths == [1, 1, 1]  # prefill: the last of 16 positions only; then two decode steps


class _JoulePerBlock:
    """A fake counter: every measured block costs exactly 1 J."""

    name = "counter"
    estimated = False

    def available(self) -> bool:
        return True

    def start(self) -> None:
        return None

    def stop(self, state, usage) -> float:
        return 1.0


def test_bench_energy_per_generated_token_excludes_prefill() -> None:
    model = _tiny_llama().eval()
    (row,) = bench_generation(model, None, prompt_tokens=[8], new_tokens=5, repetitions=2, warmup=0,
                              meter=Meter(reader=_JoulePerBlock()))
    assert row["prefill_energy_j"]["median"] == 1.0  # the prefill block, reported on its own
    # the decode block produced the 4 tokens after the first (which prefill's logits gave)
    assert row["energy_j_per_generated_token"]["median"] == 0.25
