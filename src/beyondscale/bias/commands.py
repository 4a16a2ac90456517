"""`beyondscale bias ...` as functions: one settings object in, the probe's JSON document out (stored unless
`store` is '-'). Data files are read and checked before the model loads, so a malformed file costs nothing.

Each result's `details` holds the rows and columns of its terminal table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beyondscale.interpret.commands import ProbeOutput, ProbeSettings, load, store_probe


def _finish(settings: ProbeSettings, pm: Any, doc: dict, probe: str, version: str, data: str,
            rows: list[tuple[str, dict]], columns: tuple[str, ...]) -> ProbeOutput:
    from beyondscale.interpret import results

    doc = results.nan_to_none({"model": pm.name, "model_key": pm.key, **doc})
    store_probe(settings, pm, probe, version, data, doc)
    return ProbeOutput(doc, pm.name, {"probe": probe, "rows": results.nan_to_none(rows), "columns": columns})


@dataclass(frozen=True)
class CrowsSettings(ProbeSettings):
    data: str = ""  # CrowS-Pairs CSV/JSONL, or hub:ORG/NAME[:CONFIG]
    invalid: str | None = None  # a file of pair ids known to be invalid
    seed: int = 1234  # bootstrap seed


def bias_crows_pairs(settings: CrowsSettings) -> ProbeOutput:
    """CrowS-Pairs as lm-eval scores crows_pairs_english: pct_stereotype, likelihood_diff, per bias type."""
    from beyondscale.bias import crows
    from beyondscale.interpret import results

    pairs = crows.read_pairs(settings.data)
    bad = crows.read_invalid_ids(settings.invalid) if settings.invalid else None
    pm = load(settings)
    doc, _ = crows.score_crows(pm.model, pm.tokenizer, pairs, bad, settings.seed)
    key = results.data_key({"pairs": [p.__dict__ for p in pairs], "invalid": sorted(bad or []),
                            "seed": settings.seed})
    rows = [("all", doc), *((f"bias_type={k}", v) for k, v in doc["per_bias_type"].items())]
    return _finish(settings, pm, doc, "crows_pairs", crows.PROBE_VERSION, key, rows,
                   ("pct_stereotype", "likelihood_diff"))


@dataclass(frozen=True)
class BbqSettings(ProbeSettings):
    data: str = ""  # BBQ JSONL (the authors' field names)


def bias_bbq(settings: BbqSettings) -> ProbeOutput:
    """BBQ as lm-eval's bbq task: accuracy (ambiguous / disambiguated), s_DIS, s_AMB, per category."""
    from beyondscale.bias import bbq
    from beyondscale.interpret import results

    docs = bbq.read_bbq(settings.data)
    pm = load(settings)
    doc, _ = bbq.score_bbq(pm.model, pm.tokenizer, docs)
    rows = [("all", doc), *((f"category={k}", v) for k, v in doc["per_category"].items()),
            *((f"context={k}", v) for k, v in doc["per_context_condition"].items())]
    return _finish(settings, pm, doc, "bbq", bbq.PROBE_VERSION, results.file_key(settings.data), rows,
                   ("acc", "accuracy_amb", "accuracy_disamb", "amb_bias_score", "disamb_bias_score"))


@dataclass(frozen=True)
class CounterfactualSettings(ProbeSettings):
    probes: str | None = None  # a probe-set JSON (default: the packaged one)


def bias_counterfactual(settings: CounterfactualSettings) -> ProbeOutput:
    """Log-likelihood gaps between sentences that differ only in a demographic term (offline probe set)."""
    from beyondscale.bias import counterfactual as cf

    probe_set = cf.load_probe_set(settings.probes)
    pm = load(settings)
    doc = cf.run_counterfactual(pm.model, pm.tokenizer, probe_set)
    rows = [(f"{axis}: {term} vs {v['reference']}",
             {"n": t["attribute_gap"]["n"], "attribute_gap": t["attribute_gap"]["mean"],
              "raw_gap": t["raw_gap"]["mean"], "neutral_gap": t["neutral_gap"]})
            for axis, v in doc["per_axis"].items() for term, t in v["terms"].items()]
    return _finish(settings, pm, doc, "counterfactual", f"cf-{probe_set['version']}", probe_set["content_sha256"],
                   rows, ("attribute_gap", "raw_gap", "neutral_gap"))


@dataclass(frozen=True)
class ToxicitySettings(ProbeSettings):
    classifier: str = ""  # a local HF sequence-classification folder (nothing is downloaded)
    label: str | None = None  # the classifier's toxic label name
    prompts: str | None = None  # one prompt per line (default: the probe set's stems)


def bias_toxicity(settings: ToxicitySettings) -> ProbeOutput:
    """Toxicity of greedy continuations, scored by a local classifier the user points to."""
    from beyondscale.bias import toxicity
    from beyondscale.interpret import results
    from beyondscale.models import parse_model_ref

    prompt_list = toxicity.read_prompts(settings.prompts) if settings.prompts else toxicity.default_prompts()
    clf = toxicity.load_classifier(settings.classifier, settings.label)
    pm = load(settings)
    doc = toxicity.score_toxicity(pm.model, pm.tokenizer, clf, prompt_list)
    key = results.data_key({"prompts": prompt_list, "classifier": parse_model_ref(settings.classifier).identity(),
                            "label": clf[2]})
    rows = [("all", doc), *((f"group={k}", v) for k, v in doc["per_group"].items())]
    return _finish(settings, pm, doc, "toxicity", toxicity.PROBE_VERSION, key, rows, ("mean_toxicity",))
