"""BeyondscaleLM as an lm-eval model: its request cache (resume), generation options, and its arguments."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance

from beyondscale.engine.lm_eval_model import BeyondscaleLM, request_key
from beyondscale.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore")

CONTEXTS = ["The quick brown", "To be or not to be,", "Count: one, two,", "A journey of a"]
CONTINUATIONS = [" fox", " dog jumps", " three", " that"]


def ll_requests() -> list[Instance]:
    return [Instance("loglikelihood", {}, (c, k), i) for i, (c, k) in
            enumerate((c, k) for c in CONTEXTS for k in CONTINUATIONS)]


def gen_requests(**kwargs) -> list[Instance]:
    opts = {"until": ["\n\n"], "max_gen_toks": 8, **kwargs}
    return [Instance("generate_until", {}, (c, dict(opts)), i) for i, c in enumerate(CONTEXTS)]


@pytest.fixture(scope="module")
def lm(tiny_llama):
    return BeyondscaleLM(pretrained=str(tiny_llama), device="cpu", dtype="float32", batch_size=2)


@pytest.fixture(scope="module")
def hf(tiny_llama):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_llama), device="cpu", dtype="float32", batch_size=2)


class DyingCache(dict):
    """A request cache whose process is killed after `lives` batch writes (kill -9 mid-run)."""

    def __init__(self, lives: int) -> None:
        super().__init__()
        self.lives = lives

    def put_many(self, pairs):
        if self.lives == 0:
            raise KeyboardInterrupt("killed")
        self.lives -= 1
        self.update(pairs)

    def get_many(self, keys):
        return {k: self[k] for k in keys if k in self}


def test_resume_computes_only_missing_requests(lm, hf):
    reference = hf.loglikelihood(ll_requests())
    cache = DyingCache(lives=1)
    lm.request_cache, lm.usage["requests_computed"] = cache, 0
    with pytest.raises(KeyboardInterrupt):
        lm.loglikelihood(ll_requests())
    saved = len(cache)
    assert 0 < saved < len(ll_requests())  # one engine batch stored, the rest lost with the process
    cache.lives = 10**6
    lm.usage["requests_computed"] = 0
    got = lm.loglikelihood(ll_requests())
    assert lm.usage["requests_computed"] == len(ll_requests()) - saved
    for (a, ga), (b, gb) in zip(got, reference, strict=True):
        assert a == pytest.approx(b, abs=1e-4) and ga == gb
    lm.usage["requests_computed"] = 0
    assert lm.loglikelihood(ll_requests()) == got and lm.usage["requests_computed"] == 0
    other = BeyondscaleLM(engine=lm.engine, model_key="another-model", request_cache=cache)
    other.loglikelihood(ll_requests()[:2])
    assert other.usage["requests_computed"] == 2  # the key holds the model
    assert request_key("m", "loglikelihood", ("a", "b")) != request_key("m", "loglikelihood", ("a", "c"))
    lm.request_cache = None


def test_greedy_generation_equals_hf_and_sampling_follows_gen_kwargs(lm, hf):
    greedy = lm.generate_until(gen_requests(do_sample=False))
    assert greedy == hf.generate_until(gen_requests(do_sample=False))
    assert lm.generate_until(gen_requests(do_sample=True, top_k=1)) == greedy  # sampling from the top token only
    torch.manual_seed(0)
    ours = lm.generate_until(gen_requests(do_sample=True, temperature=1.0))
    torch.manual_seed(0)
    theirs = hf.generate_until(gen_requests(do_sample=True, temperature=1.0))
    assert ours == theirs and ours != greedy  # same batch, same seed: lm-eval's sampled text
    cache = {}
    lm.request_cache = cache
    lm.generate_until(gen_requests(do_sample=True, temperature=1.0))
    assert cache == {}  # sampled answers are not cached: repeats must differ
    lm.generate_until(gen_requests(do_sample=False))
    assert len(cache) == len(CONTEXTS)
    lm.request_cache = None


def test_model_args_errors(tiny_llama):
    with pytest.raises(UserError, match="pretrained="):
        BeyondscaleLM()
    with pytest.raises(UserError, match="does not take peft"):
        BeyondscaleLM.create_from_arg_string(f"pretrained={tiny_llama},peft=x")


def test_registered_in_lm_evals_model_registry():
    from lm_eval.api.registry import get_model

    assert get_model("beyondscale") is BeyondscaleLM


def test_lm_evals_default_cuda_device_falls_back_as_its_hf_backend_does(monkeypatch) -> None:
    """`lm_eval run` passes device cuda:0 by default; HFLM then picks the device itself when CUDA is absent."""
    import torch

    from beyondscale.engine.lm_eval_model import _device_as_hflm

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _device_as_hflm("cuda:0") == "auto" and _device_as_hflm(None) == "auto"
    assert _device_as_hflm("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _device_as_hflm("cuda:0") == "cuda:0"


def test_registering_beyondscale_keeps_lm_evals_own_models() -> None:
    """lm-eval imports its own models only into an empty registry: ours must not hide `--model hf`."""
    import subprocess
    import sys

    code = ("import beyondscale.engine.lm_eval_model\n"
            "from lm_eval.api.registry import get_model\n"
            "print(get_model('hf').__name__, get_model('beyondscale').__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["HFLM", "BeyondscaleLM"], done.stderr[-500:]
