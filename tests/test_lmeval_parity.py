"""beyondscale's engine answering lm-eval's own tasks, compared per document with lm-eval's own HF backend.

Both sides run lm-eval's `simple_evaluate` on the same tiny model and the same local data in the schemas of
lm-eval's installed tasks (arc in a group with aggregate_metric_list, hellaswag's `!function process_docs`,
gsm8k's generate_until with regex/take_first filters and few-shot, bbq's custom `!function` aggregations,
wikitext's rolling log-likelihood): the reference with `HFLM`, ours with `BeyondscaleLM` through the bridge.
"""

from __future__ import annotations

import math
import os

import pytest

from _lmeval_tasks import PARITY_TASKS, write_parity_tasks

pytestmark = pytest.mark.filterwarnings("ignore")

ABS_TOL, REL_TOL = 1e-4, 1e-6  # float32 log-likelihood sums over a few hundred tokens, batched differently


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """The suite's tiny Llama with a wider initialisation: its greedy text varies (at 0.02 it repeats one token)."""
    from conftest import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama-varied", "llama", initializer_range=0.3)


@pytest.fixture(scope="module")
def parity_dir(tmp_path_factory):
    return write_parity_tasks(tmp_path_factory.mktemp("lmeval_parity"))


@pytest.fixture(scope="module")
def reference(tiny_llama, parity_dir):
    """lm-eval itself: its TaskManager, its HF backend."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    hf = HFLM(pretrained=str(tiny_llama), device="cpu", dtype="float32", batch_size=4)
    manager = TaskManager(include_path=str(parity_dir), include_defaults=False)
    return simple_evaluate(model=hf, tasks=PARITY_TASKS, task_manager=manager, log_samples=True, bootstrap_iters=0)


@pytest.fixture(scope="module")
def ours(tiny_llama, parity_dir):
    from beyondscale.engine.lm_eval_model import BeyondscaleLM
    from beyondscale.tasks.harness import load_tasks, run_harness, task_manager

    lm = BeyondscaleLM(pretrained=str(tiny_llama), device="cpu", dtype="float32")
    loaded = load_tasks(",".join(PARITY_TASKS), manager=task_manager(parity_dir, include_defaults=False))
    return run_harness(lm, loaded, bootstrap_iters=0)


@pytest.fixture(scope="module")
def units(tiny_llama, parity_dir):
    """The unit path's way: lm-eval's requests recorded as engine Items, run by the engine batch by batch,
    the answers replayed to lm-eval to score (what `evaluate` does on any executor)."""
    from beyondscale.engine import Engine
    from beyondscale.models import load_model, parse_model_ref
    from beyondscale.tasks.harness import load_tasks, task_manager
    from beyondscale.tasks.lm_eval_items import plan_items, score_planned

    loaded = load_tasks(",".join(PARITY_TASKS), manager=task_manager(parity_dir, include_defaults=False))
    model = load_model(parse_model_ref(str(tiny_llama)), device="cpu", dtype="float32")
    engine = Engine(model.model, model.tokenizer, batch_size=4)
    out = {}
    for name, planned in plan_items(loaded, {"bootstrap_iters": 0}).items():
        by_item = {}
        for batch in engine.plan(list(planned.items)):
            by_item.update(zip(batch, engine.run_batch(batch), strict=True))
        out[name] = score_planned(loaded, planned, [by_item[i] for i in planned.items], {"bootstrap_iters": 0})
    return out


@pytest.mark.parametrize("task", ["tiny_arc_a", "tiny_hellaswag", "tiny_gsm8k", "tiny_bbq", "tiny_wikitext",
                                  "tiny_mmlu"])
def test_the_unit_path_equals_lm_eval_per_document(reference, units, task):
    _per_document(reference, units[task], task)
    _same_results(reference, units[task], "results", task)


def _same(a, b, rel: float = REL_TOL) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= ABS_TOL + rel * abs(a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel) for k in a)
    return a == b


def _per_document(reference: dict, ours: dict, task: str) -> list[dict]:
    """Asserts every logged document agrees (document, responses, filtered responses, metrics); returns ours."""
    theirs, mine = reference["samples"][task], ours["samples"][task]
    assert len(mine) == len(theirs) > 0
    key = lambda s: (s["doc_hash"], s["filter"])  # noqa: E731
    for a, b in zip(sorted(theirs, key=key), sorted(mine, key=key), strict=True):
        assert a["doc_hash"] == b["doc_hash"] and a["arguments"] == b["arguments"]
        assert _same(a["resps"], b["resps"]), (task, a["doc_id"], a["resps"], b["resps"])
        assert _same(a["filtered_resps"], b["filtered_resps"]), (task, a["doc_id"])
        for metric in a["metrics"]:
            assert _same(a[metric], b[metric]), (task, a["doc_id"], metric, a[metric], b[metric])
    return mine


def _same_results(reference: dict, ours: dict, section: str, name: str) -> None:
    a, b = reference[section][name], ours[section][name]
    assert a.keys() == b.keys()
    for k in a:
        assert _same(a[k], b[k], rel=1e-5), (name, k, a[k], b[k])  # perplexities: exp of a sum / words


def test_group_with_aggregate_metric_list(reference, ours):
    for task in ("tiny_arc_a", "tiny_arc_b"):
        _per_document(reference, ours, task)
        _same_results(reference, ours, "results", task)
    _same_results(reference, ours, "groups", "tiny_arc_group")
    # the group's acc is the size-weighted mean of its members' (computed here from the documents)
    docs = ours["samples"]["tiny_arc_a"] + ours["samples"]["tiny_arc_b"]
    assert ours["groups"]["tiny_arc_group"]["acc,none"] == pytest.approx(sum(d["acc"] for d in docs) / len(docs))
    means = [ours["results"][t]["acc_norm,none"] for t in ("tiny_arc_a", "tiny_arc_b")]
    assert ours["groups"]["tiny_arc_group"]["acc_norm,none"] == pytest.approx(sum(means) / 2)


def test_function_process_docs_task(reference, ours):
    docs = _per_document(reference, ours, "tiny_hellaswag")
    assert all(" [title]" not in ending for d in docs for ending in d["doc"]["choices"])  # process_docs ran
    _same_results(reference, ours, "results", "tiny_hellaswag")


def test_generate_until_with_regex_filters_and_fewshot(reference, ours):
    docs = _per_document(reference, ours, "tiny_gsm8k")
    assert {d["filter"] for d in docs} == {"strict-match", "flexible-extract"}
    assert len({d["resps"][0][0] for d in docs}) > 1 and all(d["resps"][0][0] for d in docs)  # varied, non-empty
    assert all(d["arguments"][0][0].count("Question:") == 3 for d in docs)  # two shots, then the question
    _same_results(reference, ours, "results", "tiny_gsm8k")


def test_custom_function_aggregations_bbq(reference, ours):
    _per_document(reference, ours, "tiny_bbq")
    _same_results(reference, ours, "results", "tiny_bbq")
    assert "amb_bias_score,none" in ours["results"]["tiny_bbq"]


def test_rolling_loglikelihood_wikitext(reference, ours, tiny_llama):
    docs = _per_document(reference, ours, "tiny_wikitext")
    _same_results(reference, ours, "results", "tiny_wikitext")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    assert max(len(tok(d["arguments"][0][0])["input_ids"]) for d in docs) > 256  # more than one window


def test_mmlu_format_first_n_fewshot_through_the_prefix_cache(reference, ours):
    docs = _per_document(reference, ours, "tiny_mmlu")
    prompts = [d["arguments"][0][0] for d in docs]
    shared = min(len(os.path.commonprefix([prompts[0], p])) for p in prompts[1:])
    assert shared > 150 and prompts[0].startswith("The following are multiple choice questions")
    _same_results(reference, ours, "results", "tiny_mmlu")


def test_model_registered_by_name_equals_hf_per_request(tiny_llama, parity_dir, reference):
    """`--model beyondscale --model_args pretrained=...` through lm-eval's registry, as its CLI does."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import beyondscale.engine.lm_eval_model  # noqa: F401 - registers the name

    manager = TaskManager(include_path=str(parity_dir), include_defaults=False)
    got = simple_evaluate(model="beyondscale", model_args=f"pretrained={tiny_llama},dtype=float32",
                          device="cpu", batch_size="auto", tasks=["tiny_hellaswag", "tiny_wikitext"],
                          task_manager=manager, log_samples=True, bootstrap_iters=0)
    for task in ("tiny_hellaswag", "tiny_wikitext"):
        _per_document(reference, got, task)



def test_partial_evaluation_winogrande_through_the_unit_path(tiny_llama, tmp_path):
    """winogrande scores one shared continuation after a context per option (lm-eval's multiple_input): the
    unit path's Item with one context per choice, replayed to lm-eval, equals lm-eval's HF backend per document."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from _lmeval_tasks import _jsonl, override
    from beyondscale.engine import Engine
    from beyondscale.models import load_model, parse_model_ref
    from beyondscale.tasks.harness import load_tasks, task_manager
    from beyondscale.tasks.lm_eval_items import plan_items, score_planned

    names = ["Ann", "Bob", "Cleo", "Dev", "Eli"]
    rows = [{"sentence": f"{names[i]} gave the book to {names[i - 1]} because _ had finished reading it.",
             "option1": names[i], "option2": names[i - 1], "answer": "12"[i % 2]} for i in range(5)]
    override(tmp_path, "tiny_wino", "winogrande/default.yaml",
             {"validation": _jsonl(tmp_path / "wino.jsonl", rows)})
    hf = HFLM(pretrained=str(tiny_llama), device="cpu", dtype="float32", batch_size=4)
    reference = simple_evaluate(model=hf, tasks=["tiny_wino"], log_samples=True, bootstrap_iters=0,
                                task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False))
    loaded = load_tasks("tiny_wino", manager=task_manager(tmp_path, include_defaults=False))
    (planned,) = plan_items(loaded, {"bootstrap_iters": 0}).values()
    assert all(item.contexts and len(item.continuations) == 1 for item in planned.items)  # one context per option
    model = load_model(parse_model_ref(str(tiny_llama)), device="cpu", dtype="float32")
    engine = Engine(model.model, model.tokenizer, batch_size=4)
    by_item = {}
    for batch in engine.plan(list(planned.items)):
        by_item.update(zip(batch, engine.run_batch(batch), strict=True))
    ours = score_planned(loaded, planned, [by_item[i] for i in planned.items], {"bootstrap_iters": 0})
    _per_document(reference, ours, "tiny_wino")
    _same_results(reference, ours, "results", "tiny_wino")
