"""The study's probes: prediction depth (logit lens), counterfactual bias and the MoE's routing map.

Each result lands in the store's probe table under (model key, probe, version, input hash), exactly as
`beyondscale explain lens / routing` and `beyondscale bias counterfactual` store theirs; a model whose
results are all there already is not even loaded, so a second `make run` skips this stage.
"""

from __future__ import annotations

import json
from typing import Any

from beyondscale.quickstart.study import Study

__all__ = ["lens_texts_for", "run_probes", "stored"]


def lens_texts_for(study: Study) -> list[str]:
    """The openings of the first held-out documents (text no trained arm saw), cut to fit the ladder's context."""
    from beyondscale.lab.tokenizer import load_tokenizer

    tok = load_tokenizer(str(study.work / "ladder" / "tokenizer"))
    budget = study.plan.shapes[0].context_length - 4  # room for special tokens a tokenizer may add
    path = study.tasks["heldout_source_bpb"].with_suffix(".jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_opening(r["text"], tok, budget) for r in rows[: study.plan.probe_texts]]


def _opening(text: str, tok: Any, budget: int) -> str:
    """A document's first whole lines within `budget` tokens (the first line cut by tokens if it alone is longer)."""
    out = ""
    for line in text.splitlines(keepends=True):
        if len(tok(out + line, add_special_tokens=False)["input_ids"]) > budget:
            break
        out += line
    if not out.strip():
        out = tok.decode(tok(text, add_special_tokens=False)["input_ids"][:budget])
    return out.rstrip()


def stored(store: str) -> set[tuple[str, str, str, str]]:
    """(model_key, probe, version, data_key) of every stored probe result."""
    from beyondscale.interpret.results import probe_frame

    frame = probe_frame(store)
    if frame.empty:
        return set()
    cols = ["model_key", "probe", "probe_version", "data_key"]
    return {tuple(row) for row in frame[cols].itertuples(index=False)}  # type: ignore[misc]


def _wanted(study: Study, name: str, texts: list[str], probe_set: dict[str, Any]) -> list[tuple[str, str, str]]:
    from beyondscale.interpret import lens, routing
    from beyondscale.interpret.results import data_key

    jobs = [("logit_lens", lens.PROBE_VERSION, data_key({"texts": texts})),
            ("counterfactual", f"cf-{probe_set['version']}", probe_set["content_sha256"])]
    if name.startswith("moe-"):
        jobs.append(("routing", routing.PROBE_VERSION, data_key({"text": texts[0]})))
    return jobs


def _run_one(study: Study, name: str, jobs: list[tuple[str, str, str]], texts: list[str],
             probe_set: dict[str, Any]) -> None:
    from beyondscale.bias import counterfactual as cf
    from beyondscale.interpret import lens, routing
    from beyondscale.interpret.loading import load_probe_model
    from beyondscale.interpret.results import nan_to_none, put_probe

    pm = load_probe_model(study.models[name], device=study.device)
    for probe, version, data in jobs:
        if probe == "logit_lens":
            doc = lens.lens_texts(pm.model, pm.tokenizer, texts, pm.max_length, pm.name).to_json()
        elif probe == "counterfactual":
            doc = nan_to_none({"model": pm.name, "model_key": pm.key, **cf.run_counterfactual(pm.model, pm.tokenizer,
                                                                                          probe_set)})
        else:
            doc = routing.routing(pm.model, pm.tokenizer, texts[0], pm.max_length, pm.name)
        put_probe(study.store, model_key=pm.key, probe=probe, probe_version=version, data=data,
                  model_name=pm.name, summary=doc, model_record=pm.record)
    del pm


def run_probes(study: Study) -> None:
    """The trained models (the ladder, the MoE, the curated arm), and the real ones if the plan says so."""
    from beyondscale.bias import counterfactual as cf
    from beyondscale.interpret.cli import quiet

    quiet()
    texts = lens_texts_for(study)
    probe_set = cf.load_probe_set()
    have = stored(study.store)
    trained = {r.name for r in study.rungs}
    for name in study.models:
        if name not in trained and not study.plan.probe_real_models:
            continue
        key = study.keys.get(name)
        jobs = [j for j in _wanted(study, name, texts, probe_set) if (key, *j) not in have]
        if jobs:
            _run_one(study, name, jobs, texts, probe_set)
