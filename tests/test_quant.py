"""Quantised variants: their own model key, results paired with fp32 on the same items, logits close to fp32."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys

import pytest
import torch

from beyondscale.errors import UserError
from beyondscale.models import load_model, model_key, parse_model_ref
from beyondscale.models.quantize import QuantPlan, bytes_in_memory, plan_quantization, quantize_model

# Stated tolerance: on the tiny llama, int8 (dynamic activations, int8 weights) moves no next-token
# log-probability by more than this many nats from fp32 (measured: ~0.01).
INT8_MAX_ABS_LOGPROB = 0.05


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEYONDSCALE_CACHE", str(tmp_path / "cache"))


def test_quantised_key_differs_from_fp32_and_none_keeps_the_float_key(tiny_llama) -> None:
    ref = parse_model_ref(str(tiny_llama))
    ident = ref.identity()
    fp32 = model_key(ref, "float32", identity=ident)
    # the float key is the one stored before quantisation existed: sha256 of identity + dtype
    blob = json.dumps({"identity": ident, "dtype": "float32"}, sort_keys=True)
    assert fp32 == hashlib.sha256(blob.encode()).hexdigest()[:24]
    assert model_key(ref, "float32", identity=ident, quantization=None) == fp32
    int8 = model_key(ref, "float32", identity=ident, quantization=plan_quantization("int8", "cpu").label)
    int4 = model_key(ref, "float32", identity=ident, quantization=plan_quantization("int4", "cpu").label)
    torch_int8 = model_key(ref, "float32", identity=ident, quantization=QuantPlan("int8", "torch").label)
    assert len({fp32, int8, int4, torch_int8}) == 4


def test_unknown_method_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--quantize int3"):
        plan_quantization("int3", "cpu")


def _next_token_logprobs(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids).logits.float().log_softmax(-1)


@pytest.mark.parametrize("backend", ["torchao", "torch"])
def test_int8_logits_stay_within_tolerance_of_fp32(tiny_llama, backend) -> None:
    from transformers import AutoModelForCausalLM

    fp32 = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    q = quantize_model(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval(),
                       QuantPlan("int8", backend))
    ids = torch.randint(5, fp32.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(0))
    ref, got = _next_token_logprobs(fp32, ids), _next_token_logprobs(q, ids)
    diff = (ref - got).abs().max().item()
    assert 0 < diff <= INT8_MAX_ABS_LOGPROB  # > 0: the weights really were rounded
    # the embedding lookup stays float: the input embedding rows equal fp32's
    assert torch.equal(q.get_input_embeddings().weight, fp32.get_input_embeddings().weight)


def test_loaded_int8_facts_carry_quantisation_and_smaller_bytes(tiny_llama) -> None:
    ref = parse_model_ref(str(tiny_llama))
    fp32 = load_model(ref, device="cpu")
    int8 = load_model(ref, device="cpu", quantize="int8")
    # independent reference: fp32 weights at 4 bytes per element, tied head stored once
    params = {id(p): p for p in fp32.model.parameters()}.values()
    assert fp32.facts.bytes_in_memory == sum(p.numel() * 4 for p in params) + sum(
        b.numel() * b.element_size() for b in fp32.model.buffers())
    assert int8.facts.quantization == "torchao:int8-dynamic-activation-int8-weight-head-float"
    assert fp32.facts.quantization is None
    # int8: every Linear weight but the output head at 1 byte, plus a float32 scale and an int8 zero point per
    # output row; everything else (embedding, the head tied to it, norms, buffers) as in fp32
    head = fp32.model.get_output_embeddings()
    linears = [m for m in fp32.model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    linear_bytes = sum(m.weight.shape[0] * m.weight.shape[1] + 5 * m.weight.shape[0] for m in linears)
    float_linear = sum(4 * m.weight.numel() for m in linears)
    assert int8.facts.bytes_in_memory == fp32.facts.bytes_in_memory - float_linear + linear_bytes
    assert int8.model.get_output_embeddings().weight is int8.model.get_input_embeddings().weight  # still tied
    assert int8.facts.params_total == fp32.facts.params_total
    assert bytes_in_memory(int8.model) == int8.facts.bytes_in_memory


def test_quantised_results_stored_and_paired_with_fp32_on_the_same_items(tiny_llama, mc_task, tmp_path) -> None:
    from beyondscale import api

    store = tmp_path / "q.db"
    runs = {q: api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False,
                            settings=api.EvalSettings(device="cpu", quantize=q)) for q in ("none", "int8")}
    (fp32,), (int8,) = runs["none"].results, runs["int8"].results
    assert fp32.model_key != int8.model_key and fp32.task_key == int8.task_key
    assert int8.model.endswith("-int8")
    conn = sqlite3.connect(store)
    items = {k: {r[0]: json.loads(r[1])["logprobs"] for r in conn.execute(
        "SELECT item_key, result FROM items WHERE model_key=? AND task_key=?", (k, fp32.task_key))}
        for k in (fp32.model_key, int8.model_key)}
    facts = json.loads(conn.execute("SELECT facts FROM models WHERE model_key=?", (int8.model_key,)).fetchone()[0])
    conn.close()
    assert set(items[fp32.model_key]) == set(items[int8.model_key]) and len(items[fp32.model_key]) == 12
    assert any(items[fp32.model_key][k] != items[int8.model_key][k] for k in items[fp32.model_key])
    assert facts["quantization"].startswith("torchao:int8") and facts["bytes_in_memory"] > 0
    analysis, _ = api.analyze(store, n_boot=50)
    paired = analysis.paired
    row = paired[(paired.metric == "acc")].iloc[0]
    assert {row.model_key_a, row.model_key_b} == {fp32.model_key, int8.model_key}
    assert row.n_items == 12


def test_bad_quantize_flag_exits_2_and_stores_nothing(tiny_llama, mc_task, tmp_path, monkeypatch, capfd) -> None:
    from beyondscale.cli import main

    store = tmp_path / "bad.db"
    monkeypatch.setattr(sys, "argv", ["beyondscale", "eval", "--model", str(tiny_llama), "--tasks", str(mc_task),
                                      "--store", str(store), "--quantize", "int2", "--device", "cpu"])
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = capfd.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and "--quantize int2" in lines[0]
    assert not store.exists()


def _mapped_files() -> set[str]:
    """Files this process has mapped into memory now (the kernel's view, /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        return {line.split(maxsplit=5)[5].strip() for line in f if len(line.split(maxsplit=5)) == 6}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_int8_variant_releases_the_float_weights_file(tiny_llama) -> None:
    """transformers maps model.safetensors; the float weights must not stay resident behind the int8 copy."""
    weights = str((tiny_llama / "model.safetensors").resolve())
    ref = parse_model_ref(str(tiny_llama))
    fp32 = load_model(ref, device="cpu")
    assert weights in _mapped_files()  # the observation works: the float model is served from the mapping
    del fp32
    import gc

    gc.collect()
    int8 = load_model(ref, device="cpu", quantize="int8")
    assert weights not in _mapped_files()
    # the float tensors it keeps (embedding, norms) are its own copies, equal to the file's
    from safetensors.torch import load_file

    stored = load_file(weights)
    assert torch.equal(int8.model.get_input_embeddings().weight, stored["model.embed_tokens.weight"])


@pytest.fixture(scope="module")
def deep_llama(tmp_path_factory):
    """A llama whose Linear weights (~150 MB in fp32) dwarf the allocator's noise and the first int8 call's
    one-off allocations; the vocabulary stays tiny so the activations hardly matter."""
    from conftest import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("deep") / "deep-llama", "llama", hidden_size=512,
                            intermediate_size=1536, num_hidden_layers=12, num_attention_heads=8,
                            num_key_value_heads=8)


@pytest.mark.slow  # ~20 s: torchao's int8 CPU path on 150 MB of weights
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="exact per-batch peak needs /proc/self/clear_refs")
def test_int8_measured_peak_is_below_fp32s(deep_llama, tmp_path) -> None:
    """What eval stores as peak memory (RSS above the process before loading) is lower for the int8 variant
    than for fp32, as its smaller weights promise. int8 runs first, so it cannot reuse pages fp32 freed;
    before the float weights were released it held them beside its int8 copy and peaked above fp32."""
    from beyondscale import api
    from conftest import write_mc_task

    store, task = tmp_path / "peak.db", write_mc_task(tmp_path, n=3)
    runs = {q: api.evaluate([str(deep_llama)], [str(task)], store=store, show_progress=False,
                            settings=api.EvalSettings(device="cpu", quantize=q)) for q in ("int8", "none")}
    _, frames = api.analyze(store, n_boot=10)
    peak = frames.efficiency.groupby("model_key")["peak_memory_bytes"].max()
    facts = frames.models.set_index("model_key")["bytes_in_memory"]
    k8, k32 = runs["int8"].results[0].model_key, runs["none"].results[0].model_key
    assert facts[k32] - facts[k8] > 100 * 2**20  # independent of the meter: 4 bytes -> 1 per Linear weight
    assert peak[k8] < peak[k32]


def test_variants_are_paired_with_their_originals_by_content() -> None:
    import pandas as pd

    from beyondscale.analysis.quantised import pairs

    base = {"architecture": "LlamaForCausalLM", "tokenizer_key": "t1", "params_total": 1e6, "dtype": "float32"}
    rows = [
        {"model_key": "k1", "model": "A", "quantization": "gguf:Q4_1", **base},
        {"model_key": "k2", "model": "A-int8", "quantization": "gguf:Q4_1+torchao:int8-x", **base},
        {"model_key": "k3", "model": "B", "quantization": None, **base, "tokenizer_key": "t2"},
        {"model_key": "k4", "model": "B-int4", "quantization": "torchao:int4-x", **base, "tokenizer_key": "t2"},
        # a fine-tune of A's base: same facts as A, so A-int8 fits two originals and the name chooses
        {"model_key": "k5", "model": "A-tuned", "quantization": "gguf:Q4_1", **base},
        # another model quantised the same way but with other weights' facts (size): nobody's variant
        {"model_key": "k6", "model": "C-int8", "quantization": "gguf:Q4_1+torchao:int8-x", **base,
         "params_total": 2e6},
        # a GGUF file is not a quantised variant of a float model
        {"model_key": "k7", "model": "B-gguf", "quantization": "gguf:Q8_0", **base, "tokenizer_key": "t2"},
    ]
    assert sorted(pairs(pd.DataFrame(rows))) == [("k1", "k2"), ("k3", "k4")]


def test_verdict_says_what_the_variant_kept_and_saved(tiny_llama, mc_task, rolling_task, tmp_path) -> None:
    """The sentence's figures against the store's own rows, computed here by hand."""
    from beyondscale import api

    store = tmp_path / "v.db"
    for q in ("none", "int8"):
        api.evaluate([str(tiny_llama)], [str(mc_task), str(rolling_task)], store=store, show_progress=False,
                     settings=api.EvalSettings(device="cpu", quantize=q))
    analysis, frames = api.analyze(store, n_boot=200)
    name = tiny_llama.name
    (line,) = [v for v in analysis.verdict if v.startswith("Cheaper, not bigger:")]
    acc = frames.scores[frames.scores.metric == "acc"].set_index("model")["value"]
    kept = 100 * acc[f"{name}-int8"] / acc[name]
    paired = analysis.paired[analysis.paired.primary.astype(bool)]
    losses = int((paired.significant.astype(bool) & (paired.better == name)).sum())
    assert line.startswith(f"Cheaper, not bigger: {name}-int8 kept {kept:.1f}% of {name}'s accuracy, "
                           f"no significant loss on {2 - losses} of 2 tasks")
    eff = frames.efficiency.groupby("model")
    speed = eff["tokens_per_s"].mean()
    peak = eff["peak_memory_bytes"].max()
    weights = frames.models.set_index("model")["bytes_in_memory"]
    for ratio, what in ((speed[f"{name}-int8"] / speed[name], "speed (tokens/s)"),
                        (weights[f"{name}-int8"] / weights[name], "weights")):
        assert f"{ratio:.2g}× the {what}" in line
    # a tiny model's peak can sit within the allocator's noise (stored as 0 above the baseline): no ratio then
    if peak[name] > 0 and peak[f"{name}-int8"] > 0:
        assert f"{peak[f'{name}-int8'] / peak[name]:.2g}× the peak memory" in line
    else:
        assert "peak memory" not in line


def test_a_model_without_linear_layers_is_refused_not_stored_as_a_variant(tiny_gpt2) -> None:
    """GPT-2's blocks are Conv1D, not nn.Linear: quantising would change nothing, so no 'int8' model is made."""
    with pytest.raises(UserError, match="--quantize int8: GPT2LMHeadModel has no nn.Linear"):
        load_model(parse_model_ref(str(tiny_gpt2)), device="cpu", quantize="int8")


def test_wording_without_an_accuracy_task_and_without_a_measured_peak() -> None:
    from beyondscale.analysis.findings import QuantisedVariant
    from beyondscale.analysis.wording import word

    line = word(QuantisedVariant("m-int8", "m", None, 2, (), 1.5, float("nan"), 0.25))
    assert line == ("Cheaper, not bigger: m-int8 had, against m, no significant loss on 2 of 2 tasks, "
                    "at 1.5× the speed (tokens/s) and 0.25× the weights.")
