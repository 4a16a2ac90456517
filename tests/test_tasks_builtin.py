"""Built-in tasks render byte-identical prompts to lm-evaluation-harness.

The hub loader is replaced by hand-written documents in each dataset's hub schema
(tests/fixtures/tasks/hub_docs.json). Zero-shot expectations are written out by hand from lm-eval's
templates; the few-shot ones are the exact strings lm-evaluation-harness 0.4.13 built for the same
documents (ConfigurableTask.build_all_requests, fewshot seed 1234).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from beyondscale.engine.requests import Item
from beyondscale.tasks import build_items, load_task
from beyondscale.tasks import data as tdata

HUB_DOCS = json.loads((Path(__file__).parent / "fixtures" / "tasks" / "hub_docs.json").read_text("utf-8"))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    calls: list[tuple] = []

    def fake(path: str, name: str | None, split: str, kwargs: dict) -> list[dict]:
        calls.append((path, name, split))
        task = {
            "allenai/ai2_arc": "arc_easy",
            "Rowan/hellaswag": "hellaswag",
            "baber/piqa": "piqa",
            "allenai/winogrande": "winogrande",
            "EleutherAI/lambada_openai": "lambada_openai",
            "allenai/sciq": "sciq",
            "EleutherAI/wikitext_document_level": "wikitext",
        }[path]
        return [dict(d) for d in HUB_DOCS[task][split]]

    monkeypatch.setattr(tdata, "load_hub_split", fake)
    return calls


def mc(items: list[Item], i: int) -> tuple:
    it = items[i]
    return it.context, it.continuations, it.gold


def test_arc_easy(hub: list[tuple]) -> None:
    items = build_items(load_task("arc_easy"))
    assert hub == [("allenai/ai2_arc", "ARC-Easy", "test")]
    assert mc(items, 0) == (
        "Question: Which animal has gills?\nAnswer:",
        (" dog", " fish", " cat", " bird"),
        1,  # answerKey "2" among labels 1..4
    )
    assert mc(items, 1) == (
        "Question: What makes a shadow?\nAnswer:",
        (" blocking light", " sound", " heat", " water"),
        0,
    )
    assert items[2].gold == 2
    assert items[0].choices == ("dog", "fish", "cat", "bird")


def test_arc_easy_fewshot_matches_lm_eval(hub: list[tuple]) -> None:
    items = build_items(load_task("arc_easy"), seed=1234, num_fewshot=2)
    assert items[0].context == (
        "Question: What melts ice?\nAnswer: heat\n\n"
        "Question: Which is a gas?\nAnswer: steam\n\n"
        "Question: Which animal has gills?\nAnswer:"
    )
    assert ("allenai/ai2_arc", "ARC-Easy", "train") in hub  # shots come from training_split


def test_arc_challenge_includes_arc_easy(hub: list[tuple]) -> None:
    spec = load_task("arc_challenge")
    assert spec.doc_to_text == "Question: {{question}}\nAnswer:" and spec.dataset_name == "ARC-Challenge"
    items = build_items(spec)
    assert hub == [("allenai/ai2_arc", "ARC-Challenge", "test")]
    assert mc(items, 0)[0] == "Question: Which animal has gills?\nAnswer:"


def test_hellaswag(hub: list[tuple]) -> None:
    items = build_items(load_task("hellaswag"))
    assert hub == [("Rowan/hellaswag", None, "validation")]
    assert mc(items, 0) == (
        "Playing kickball: Kids are playing in a yard. They",
        (" eat dinner.", " go to sleep.", " fly away.", " run after a ball."),
        3,
    )
    # " [title]" -> ". ", other [brackets] dropped, double spaces collapsed once, ending kept unstripped
    assert mc(items, 1) == (
        "Home and Garden: How to clean a pan. Soak the pan. The",
        ("  Scrub it with soap.", " pan melts.", " water freezes.", " pan sings."),
        0,
    )


def test_hellaswag_fewshot_matches_lm_eval(hub: list[tuple]) -> None:
    items = build_items(load_task("hellaswag"), seed=1234, num_fewshot=1)
    assert items[0].context == (
        "Roof shingle removal: A man is standing on a roof. He starts removing shingles.\n\n"
        "Playing kickball: Kids are playing in a yard. They"
    )


def test_piqa(hub: list[tuple]) -> None:
    items = build_items(load_task("piqa"))
    assert hub == [("baber/piqa", None, "validation")]
    assert mc(items, 0) == ("Question: How to cut bread?\nAnswer:", (" Use a knife.", " Use a spoon."), 0)
    assert mc(items, 1) == (
        "Question: Keep ice cream cold\nAnswer:",
        (" leave it in the sun", " put it in the freezer"),
        1,
    )


def test_winogrande_partial_evaluation(hub: list[tuple]) -> None:
    items = build_items(load_task("winogrande"))
    assert hub == [("allenai/winogrande", "winogrande_xl", "validation")]
    it = items[0]
    assert it.context == ""
    assert it.contexts == (
        "John moved the couch from the garage to the backyard to create space. The garage",
        "John moved the couch from the garage to the backyard to create space. The backyard",
    )
    assert it.continuations == (" is small.",)
    assert it.gold == 0
    it = items[1]
    assert it.contexts == (
        "Ian volunteered to eat Dennis's menudo after already having a bowl because Ian",
        "Ian volunteered to eat Dennis's menudo after already having a bowl because Dennis",
    )
    assert it.continuations == (" despised eating intestine.",)
    assert it.gold == 1


def test_winogrande_fewshot_matches_lm_eval(hub: list[tuple]) -> None:
    it = build_items(load_task("winogrande"), seed=1234, num_fewshot=1)[0]
    shot = "Sarah was a much better surgeon than Maria so Sarah always got the harder cases.\n\n"
    assert it.contexts == (
        shot + "John moved the couch from the garage to the backyard to create space. The garage",
        shot + "John moved the couch from the garage to the backyard to create space. The backyard",
    )


def test_lambada_openai(hub: list[tuple]) -> None:
    items = build_items(load_task("lambada_openai"))
    assert hub == [("EleutherAI/lambada_openai", "default", "test")]
    it = items[1]
    assert it.output_type == "loglikelihood"
    assert it.context == "She opened the door and saw her brother standing there with a huge grin on his"
    assert it.continuations == (" face",)  # lm-eval adds no target_delimiter for loglikelihood
    assert items[0].continuations == (" sign.",)
    assert items[0].context.endswith("I look at him, feeling stunned. Like this is some sort of")


def test_sciq(hub: list[tuple]) -> None:
    items = build_items(load_task("sciq"))
    assert hub == [("allenai/sciq", None, "test")]
    assert mc(items, 0) == (
        "Oxidants accept electrons.\nReductants donate them.\n"
        "Question: Compounds that are capable of accepting electrons are called what?\nAnswer:",
        (" antioxidants", " Oxygen", " residues", " oxidants"),
        3,
    )
    assert mc(items, 1)[0] == "\nQuestion: What do plants use to make food?\nAnswer:"


def test_wikitext(hub: list[tuple]) -> None:
    items = build_items(load_task("wikitext"))
    assert hub == [("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test")]
    assert items[1].output_type == "loglikelihood_rolling"
    assert items[1].text == (
        " = Valkyria Chronicles III =\n"
        "Senjō no Valkyria 3: Unrecorded Chronicles (Japanese: 戦場のヴァルキュリア3) "
        "is a tactical role-playing video game.\n"
    )
    assert items[0].text == (
        " = Robert Boulter =\n"
        "Robert Boulter is an English film, television and theatre actor. He had a guest-starring role "
        "on the television series The Bill in 2000.\n"
        "== Career ==\n"
        "In 2006, Boulter starred alongside Whishaw in the play Citizenship written by Mark Ravenhill. "
        'The population was 1,234.5 ("about") 1 people\'s homes, 12°C; ok! right?\n'
    )
    # lm-eval's wikitext process_results counts words and bytes on the original page, not the scored text.
    from beyondscale.engine.requests import ItemResult
    from beyondscale.metrics import score
    pages = [d["page"] for d in HUB_DOCS["wikitext"]["test"]]
    assert [it.count_text for it in items] == pages and pages[0] != items[0].text
    results = [ItemResult(doc_id=it.doc_id, logprobs=[-10.0], is_greedy=[False], n_tokens=[5]) for it in items]
    rows = score("loglikelihood_rolling", ["word_perplexity"], items, results).rows
    assert [r["values"]["words"] for r in rows] == [len(re.split(r"\s+", p)) for p in pages]
    assert [r["values"]["bytes"] for r in rows] == [len(p.encode("utf-8")) for p in pages]
