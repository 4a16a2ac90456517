"""The study's probes: prediction depth (logit lens), counterfactual bias and the MoE's routing map.

Each result lands in the store's probe table under (model key, probe, version, input hash), exactly as
`beyondscale explain lens / routing` and `beyondscale bias counterfactual` store theirs; a model whose
results are all there already is not even loaded, so a second `make run` skips this stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beyondscale.bias import counterfactual as cf
from beyondscale.interpret import lens, routing
from beyondscale.interpret.loading import load_probe_model
from beyondscale.interpret.results import data_key, nan_to_none, probe_frame, put_probe
from beyondscale.lab.sweep import TrainedLadder
from beyondscale.lab.tokenizer import load_tokenizer
from beyondscale.quickstart.spec import StudySpec
from beyondscale.quickstart.stages import EvaluationStage

__all__ = ["lens_texts_for", "run_probes", "stored"]


def lens_texts_for(spec: StudySpec, ladder: TrainedLadder, heldout_task: Path) -> list[str]:
    """The openings of the first held-out documents (text no trained arm saw), cut to fit the ladder's context."""
    tok = load_tokenizer(str(ladder.tokenizer))
    budget = spec.plan.shapes[0].context_length - 4  # room for special tokens a tokenizer may add
    path = heldout_task.with_suffix(".jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_opening(r["text"], tok, budget) for r in rows[: spec.plan.probe_texts]]


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
    frame = probe_frame(store)
    if frame.empty:
        return set()
    cols = ["model_key", "probe", "probe_version", "data_key"]
    return {tuple(row) for row in frame[cols].itertuples(index=False)}  # type: ignore[misc]


def _wanted(name: str, texts: list[str], probe_set: dict[str, Any]) -> list[tuple[str, str, str]]:
    jobs = [("logit_lens", lens.PROBE_VERSION, data_key({"texts": texts})),
            ("counterfactual", f"cf-{probe_set['version']}", probe_set["content_sha256"])]
    if name.startswith("moe-"):
        jobs.append(("routing", routing.PROBE_VERSION, data_key({"text": texts[0]})))
    return jobs


def _run_one(spec: StudySpec, model: str, jobs: list[tuple[str, str, str]], texts: list[str],
             probe_set: dict[str, Any]) -> None:
    pm = load_probe_model(model, device=spec.device)
    for probe, version, data in jobs:
        if probe == "logit_lens":
            doc = lens.lens_texts(pm.model, pm.tokenizer, texts, pm.max_length, pm.name).to_json()
        elif probe == "counterfactual":
            doc = nan_to_none({"model": pm.name, "model_key": pm.key, **cf.run_counterfactual(pm.model, pm.tokenizer,
                                                                                          probe_set)})
        else:
            doc = routing.routing(pm.model, pm.tokenizer, texts[0], pm.max_length, pm.name)
        put_probe(spec.store, model_key=pm.key, probe=probe, probe_version=version, data=data,
                  model_name=pm.name, summary=doc, model_record=pm.record)
    del pm


def run_probes(spec: StudySpec, ladder: TrainedLadder, evaluation: EvaluationStage, heldout_task: Path) -> None:
    """The trained models (the ladder, the MoE, the curated arm), and the real ones if the plan says so."""
    texts = lens_texts_for(spec, ladder, heldout_task)
    probe_set = cf.load_probe_set()
    have = stored(spec.store)
    trained = {r.name for r in ladder.rungs}
    for name, model in evaluation.specs.items():
        if name not in trained and not spec.plan.probe_real_models:
            continue
        key = evaluation.keys.get(name)
        jobs = [j for j in _wanted(name, texts, probe_set) if (key, *j) not in have]
        if jobs:
            _run_one(spec, model, jobs, texts, probe_set)
