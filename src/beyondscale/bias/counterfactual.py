"""Counterfactual probes: how much more likely a sentence becomes when only a demographic term changes.

The probe set (`bias/data/counterfactual_probes.json`) was written for beyondscale, not taken from
a data set. Construction: six axes (gender, age, religion, nationality, disability,
socioeconomic status), each a short list of noun phrases that fit the slot of "The {term} ...";
fourteen one-slot templates, three of them *neutral* (no attribute: "I saw the {term} yesterday.")
and eleven stating an attribute (competence, status, trust, crime, violence, work, warmth), both
positive and negative. Every template is filled with every term of every axis.

Measure: for each axis, the first term is the reference; for each other term and template,
gap = log p(sentence with term) - log p(sentence with reference), scored with an empty context as
CrowS-Pairs is. A term's prior probability shows up in every template, so the *attribute gap*
subtracts the mean gap over the neutral templates. Gaps are paired over templates; the interval
is a 95% t-interval and a bootstrap interval over templates (few templates: read them as rough).
Everything is local, so the demo runs offline.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

import numpy as np
from scipy import stats

from beyondscale.bias.scoring import bootstrap_ci, loglikelihoods
from beyondscale.errors import UserError

PROBE_FILE = "counterfactual_probes.json"


def load_probe_set(path: str | None = None) -> dict[str, Any]:
    """The packaged probe set (or a user's file in the same format), validated."""
    if path is None:
        raw = resources.files("beyondscale.bias").joinpath("data", PROBE_FILE).read_text(encoding="utf-8")
        where = PROBE_FILE
    else:
        try:
            raw, where = open(path, encoding="utf-8").read(), path
        except OSError as err:
            raise UserError(f"--probes {path}: cannot read ({err.strerror})") from None
    try:
        probes = json.loads(raw)
    except ValueError as err:
        raise UserError(f"{where}: not valid JSON ({err})") from None
    for i, t in enumerate(probes.get("templates", []), 1):
        if not isinstance(t, dict) or str(t.get("text", "")).count("{term}") != 1:
            raise UserError(f"{where}: template {i} must have exactly one {{term}} slot")
    if not probes.get("axes") or not any(t.get("neutral") for t in probes["templates"]):
        raise UserError(f"{where}: needs 'axes' and at least one neutral template")
    probes["content_sha256"] = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return probes


def sentences(probes: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    """(axis, term, template index, sentence) for every cell of the probe set."""
    return [(axis, term, j, t["text"].replace("{term}", term))
            for axis, terms in probes["axes"].items() for term in terms
            for j, t in enumerate(probes["templates"])]


def _interval(x: np.ndarray) -> dict[str, Any]:
    n = len(x)
    if n < 2:
        return {"n": n, "mean": float(x.mean()) if n else None}
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return {"n": n, "mean": float(x.mean()), "t_ci95": (float(x.mean() - half), float(x.mean() + half)),
            "bootstrap_ci95": bootstrap_ci(x)}


def gaps(probes: dict[str, Any], ll: dict[tuple[str, str, int], float]) -> dict[str, Any]:
    """Per axis and term: raw and attribute gaps (nats) against the axis's reference term, paired over templates."""
    neutral = [j for j, t in enumerate(probes["templates"]) if t.get("neutral")]
    attrs = [j for j, t in enumerate(probes["templates"]) if not t.get("neutral")]
    out: dict[str, Any] = {}
    for axis, terms in probes["axes"].items():
        ref = terms[0]
        rows = {}
        for term in terms[1:]:
            gap = {j: ll[axis, term, j] - ll[axis, ref, j] for j in neutral + attrs}
            prior = float(np.mean([gap[j] for j in neutral]))
            rows[term] = {"raw_gap": _interval(np.array([gap[j] for j in attrs])),
                          "attribute_gap": _interval(np.array([gap[j] - prior for j in attrs])),
                          "neutral_gap": prior}
        out[axis] = {"reference": ref, "terms": rows}
    return out


def run_counterfactual(model: Any, tokenizer: Any, probes: dict[str, Any]) -> dict[str, Any]:
    from beyondscale.engine import Item

    cells = sentences(probes)
    items = [Item(doc_id=i, output_type="loglikelihood", context="", continuations=(s,))
             for i, (*_, s) in enumerate(cells)]
    lls = loglikelihoods(model, tokenizer, items)
    ll = {(axis, term, j): float(v[0]) for (axis, term, j, _), v in zip(cells, lls, strict=True)}
    return {"probe_set": probes["name"], "probe_set_version": probes["version"],
            "probe_set_sha256": probes["content_sha256"], "n_sentences": len(cells), "per_axis": gaps(probes, ll)}
