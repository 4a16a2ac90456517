"""Cross-check against lm-evaluation-harness itself (runs only where `lm_eval` is installed: `bench` extra).

For every built-in task, lm-eval's own ConfigurableTask (its YAML, its `!function` helpers) and our
`build_items` render the same hand-written documents; every request must be byte-identical, zero- and
few-shot, for several seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beyondscale.engine.requests import Item
from beyondscale.tasks import build_items, load_task
from beyondscale.tasks import data as tdata

lm_task = pytest.importorskip("lm_eval.api.task")
lm_yaml = pytest.importorskip("lm_eval.tasks._yaml_loader")
datasets = pytest.importorskip("datasets")

pytestmark = pytest.mark.slow

HUB_DOCS = json.loads((Path(__file__).parent / "fixtures" / "tasks" / "hub_docs.json").read_text("utf-8"))
LM_YAMLS = {
    "arc_easy": "arc/arc_easy.yaml",
    "arc_challenge": "arc/arc_challenge.yaml",
    "hellaswag": "hellaswag/hellaswag.yaml",
    "piqa": "piqa/piqa.yaml",
    "winogrande": "winogrande/default.yaml",
    "lambada_openai": "lambada/lambada_openai.yaml",
    "sciq": "sciq/sciq.yaml",
    "wikitext": "wikitext/wikitext.yaml",
}


def lm_eval_requests(name: str, shots: int, seed: int) -> dict[int, list[tuple]]:
    import lm_eval.tasks

    path = Path(lm_eval.tasks.__file__).parent / LM_YAMLS[name]
    if not path.is_file():
        pytest.skip(f"this lm_eval has no {path}")
    cfg = {k: v for k, v in lm_yaml.load_yaml(path).items() if k != "tag"}
    splits = HUB_DOCS[name]
    cfg["custom_dataset"] = lambda **_: datasets.DatasetDict(
        {s: datasets.Dataset.from_list(d) for s, d in splits.items()}
    )
    cfg["num_fewshot"] = shots
    task = lm_task.ConfigurableTask(config=cfg)
    task.set_fewshot_seed(seed)
    task.build_all_requests()
    out: dict[int, list[tuple]] = {}
    for inst in task.instances:
        out.setdefault(inst.doc_id, []).append(tuple(inst.arguments[:2]))
    return out


def as_requests(it: Item) -> list[tuple]:
    if it.output_type == "multiple_choice":
        if it.contexts:
            return [(c, it.continuations[0]) for c in it.contexts]
        return [(it.context, c) for c in it.continuations]
    if it.output_type == "loglikelihood":
        return [(it.context, it.continuations[0])]
    return [(it.text,)]


@pytest.mark.parametrize("name", sorted(LM_YAMLS))
def test_prompts_identical_to_lm_eval(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        tdata, "load_hub_split", lambda p, n, split, kw: [dict(d) for d in HUB_DOCS[name][split]]
    )
    for shots in (0,) if name == "wikitext" else (0, 1, 2):
        for seed in (1234, 7):
            ref = lm_eval_requests(name, shots, seed)
            items = build_items(load_task(name), seed=seed, num_fewshot=shots)
            assert {it.doc_id: as_requests(it) for it in items} == ref, (name, shots, seed)
