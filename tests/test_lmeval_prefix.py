"""The prefix cache across documents: a shared few-shot prefix computed once gives the scores computed without it."""

from __future__ import annotations

import pytest

from _lmeval_tasks import write_parity_tasks
from beyondscale.engine import Engine, Item
from beyondscale.engine.prefix_cache import clusters, run_with_prefix_cache
from beyondscale.engine.scoring import Group
from beyondscale.engine.tokens import Span

pytestmark = pytest.mark.filterwarnings("ignore")

SHOTS = "The following are questions about foxes.\n\n" + "".join(
    f"Q: what does the fox {i} do?\nA. jump\nB. sleep\nAnswer: A\n\n" for i in range(3))


def items() -> list[Item]:
    docs = [Item(i, "multiple_choice", context=SHOTS + f"Q: what does dog {i} eat?\nAnswer:",
                 continuations=(" A", " B", " C jumps over the dog", " D")) for i in range(7)]
    return [*docs, Item(99, "multiple_choice", context="Unrelated", continuations=(" x", " y z"))]


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gpt2"])
def test_prefix_cache_equals_scoring_without_it(arch, request):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = request.getfixturevalue(arch)
    engine = Engine(AutoModelForCausalLM.from_pretrained(path, dtype="float32"), AutoTokenizer.from_pretrained(path))
    engine.token_budget = 64  # several chunks over one cached prefix
    plain = engine.run(items())
    got = {it.doc_id: r for batch in run_with_prefix_cache(engine, items()) for it, r in batch}
    assert sorted(got) == sorted(it.doc_id for it in items())
    for it, ref in zip(items(), plain, strict=True):
        assert got[it.doc_id].logprobs == pytest.approx(ref.logprobs, abs=1e-5)
        assert got[it.doc_id].is_greedy == ref.is_greedy
    shared = len(engine.tok.encode(SHOTS)) - 2
    saved = sum(r.tokens_in for r in plain) - sum(r.tokens_in for r in got.values())
    assert saved >= 6 * shared  # the prefix ran once, not seven times


def test_clusters_need_enough_shared_tokens_and_stop_before_scored_positions():
    def group(tokens: list[int], n_scored: int = 1) -> Group:
        return Group(0, len(tokens) - 1, [Span(0, tokens, n_scored)])

    common = list(range(100))
    groups = [group(common + [200, 1]), group(common + [201, 2]), group(common[:70] + [5] * 40),
              group([9, 9, 9, 9])]
    found, rest = clusters(groups, min_shared=64)
    assert [(n, sorted(m)) for n, m in found] == [(70, [0, 1, 2])] and rest == [3]
    late = [group(common + [7, 1], n_scored=60), group(common + [8, 1], n_scored=60)]
    assert clusters(late, min_shared=64) == ([], [0, 1])  # scored positions from 41 on: nothing to cache


def test_mmlu_format_through_lm_eval_equal_with_and_without_prefix_cache(tiny_llama, tmp_path):
    from beyondscale.engine.lm_eval_model import BeyondscaleLM
    from beyondscale.tasks.harness import load_tasks, run_harness, task_manager

    manager = task_manager(write_parity_tasks(tmp_path), include_defaults=False)
    runs = {}
    for cached in (True, False):
        lm = BeyondscaleLM(pretrained=str(tiny_llama), device="cpu", dtype="float32", prefix_cache=cached)
        out = run_harness(lm, load_tasks("tiny_mmlu", manager=manager), bootstrap_iters=0)
        runs[cached] = ([s["resps"] for s in out["samples"]["tiny_mmlu"]], lm.usage["tokens_in"])
    for a, b in zip(runs[True][0], runs[False][0], strict=True):
        assert [x[0][0] for x in a] == pytest.approx([x[0][0] for x in b], abs=1e-5)
    assert runs[True][1] < 0.5 * runs[False][1]
