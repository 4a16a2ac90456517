"""ModelRef parsing, safe loading refusals, and ModelFacts against hand counts."""

from __future__ import annotations

import shutil

import pytest
import torch

from beyondscale.errors import UserError
from beyondscale.models import load_model, parse_model_ref
from beyondscale.models.facts import REFERENCE_CTX


def test_parse_kinds(tiny_llama, tmp_path):
    ref = parse_model_ref(str(tiny_llama))
    assert ref.kind == "folder" and ref.name == "tiny-llama"
    named = parse_model_ref(f"Small={tiny_llama}")
    assert named.name == "Small" and named.location == ref.location
    hub = parse_model_ref("EleutherAI/pythia-160m@step1000")
    assert (hub.kind, hub.location, hub.revision) == ("hub", "EleutherAI/pythia-160m", "step1000")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_model_ref(str(gguf)).kind == "gguf"


@pytest.mark.parametrize("spec", ["./missing-model", "/nonexistent/folder", "missing.gguf"])
def test_missing_path(spec):
    with pytest.raises(UserError, match="no such file or folder"):
        parse_model_ref(spec)


def test_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="no weights"):
        parse_model_ref(str(tmp_path))
    with pytest.raises(UserError, match="no config.json"):
        parse_model_ref(str(tmp_path.parent))


def test_identity_follows_content(tiny_llama, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama, copy)
    assert parse_model_ref(str(copy)).identity() == parse_model_ref(str(tiny_llama)).identity()
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert parse_model_ref(str(copy)).identity() != parse_model_ref(str(tiny_llama)).identity()


def test_corrupt_safetensors(tiny_llama, tmp_path):
    copy = tmp_path / "corrupt"
    shutil.copytree(tiny_llama, copy)
    (copy / "model.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(UserError, match="not a valid safetensors file"):
        load_model(parse_model_ref(str(copy)), device="cpu")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_bin_needing_unpickling_is_refused(tiny_llama, tmp_path):
    copy = tmp_path / "pickled"
    shutil.copytree(tiny_llama, copy)
    (copy / "model.safetensors").unlink()
    torch.save({"weight": _Evil()}, copy / "pytorch_model.bin")
    with pytest.raises(UserError, match="unpickling"):
        load_model(parse_model_ref(str(copy)), device="cpu")


def test_plain_bin_loads_with_weights_only(tiny_llama, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    copy = tmp_path / "bin"
    shutil.copytree(tiny_llama, copy)
    state = load_file(copy / "model.safetensors")
    (copy / "model.safetensors").unlink()
    torch.save(state, copy / "pytorch_model.bin")
    real_load, loads = torch.load, []

    def spy(path, *args, **kw):
        loads.append((str(path), kw.get("weights_only")))
        return real_load(path, *args, **kw)

    monkeypatch.setattr(torch, "load", spy)
    loaded = load_model(parse_model_ref(str(copy)), device="cpu")
    assert loaded.facts.weights_format == "bin"
    bin_loads = [w for p, w in loads if p.endswith("pytorch_model.bin")]
    assert bin_loads and all(w is True for w in bin_loads), loads  # every read of the file unpickles nothing
    got = loaded.model.state_dict()
    assert set(state) <= set(got)
    for name, tensor in state.items():  # the saved weights, not a fresh initialisation
        assert torch.equal(got[name].cpu(), tensor), name


def test_facts_llama_by_hand(tiny_llama):
    loaded = load_model(parse_model_ref(str(tiny_llama)), device="cpu")
    f, cfg = loaded.facts, loaded.model.config
    v, d, i, L = cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = cfg.num_key_value_heads * (d // cfg.num_attention_heads)
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * i + 2 * d  # q, k, v, o, mlp, two norms
    total = v * d + L * per_layer + d  # tied embedding once, final norm
    assert f.params_total == total
    assert f.params_embedding == v * d and f.params_non_embedding == total - v * d
    assert f.params_active == total and f.params_experts == 0
    # Kaplan: 2 x non-embedding matmul params + the (tied) output projection + attention term.
    assert f.flops_per_token == pytest.approx(2 * (L * per_layer + d + v * d) + 2 * L * d * REFERENCE_CTX)
    assert f.dtype == "float32" and f.max_context == 256 and f.architecture == "LlamaForCausalLM"


def test_facts_moe_active_params(tmp_path):
    from conftest import build_tiny_model

    path = build_tiny_model(tmp_path / "moe", "mixtral")
    f = load_model(parse_model_ref(str(path)), device="cpu").facts
    cfg_d, cfg_i, n_layers, n_exp, k = 32, 48, 2, 4, 2
    expert_params = n_layers * n_exp * 3 * cfg_d * cfg_i
    assert f.params_experts == expert_params
    assert f.params_active == f.params_total - expert_params + expert_params * k // n_exp
    assert (f.n_experts, f.experts_per_token) == (n_exp, k)
    assert f.params_embedding == 2 * f.vocab_size * cfg_d  # untied input + output


def test_model_key_is_the_documented_hash(tmp_path) -> None:
    import hashlib
    import json

    from beyondscale.models import model_key

    class Ref:
        def identity(self) -> str:
            return "abc123"

    expected = hashlib.sha256(json.dumps({"dtype": "float32", "identity": "abc123"}).encode()).hexdigest()[:24]
    assert model_key(Ref(), "float32") == expected
    assert model_key(Ref(), "float32", identity="abc123") == expected
    import torch

    assert model_key(Ref(), torch.float32) == expected
    assert model_key(Ref(), "bfloat16") != expected


def test_facts_vocab_quantization_and_tokenizer_key(tiny_llama, tiny_gpt2, tmp_path):
    import json

    llama = load_model(parse_model_ref(str(tiny_llama)), device="cpu").facts
    gpt2 = load_model(parse_model_ref(str(tiny_gpt2)), device="cpu").facts
    assert llama.vocab_size == json.loads((tiny_llama / "config.json").read_text())["vocab_size"]
    assert llama.quantization is None  # plain float weights
    assert llama.tokenizer_key and llama.tokenizer_key == gpt2.tokenizer_key  # same tokenizer files
    other = tmp_path / "other-tok"
    shutil.copytree(tiny_llama, other)
    tok = json.loads((other / "tokenizer.json").read_text())
    first = next(iter(tok["model"]["vocab"]))
    tok["model"]["vocab"]["zz" + first] = tok["model"]["vocab"].pop(first)  # one token renamed
    (other / "tokenizer.json").write_text(json.dumps(tok))
    assert load_model(parse_model_ref(str(other)), device="cpu").facts.tokenizer_key != llama.tokenizer_key
    cfg = json.loads((other / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8", "bits": 8}
    from beyondscale.models.facts import quantization_label

    assert quantization_label("safetensors", cfg["quantization_config"]) == "fp8:8bit"
    assert quantization_label("gguf:Q4_K_M", None) == "gguf:Q4_K_M"
    assert quantization_label("safetensors", None) is None
