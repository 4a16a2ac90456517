"""`beyondscale explain ...` as functions: one settings object in, the probe's JSON document out (and
stored, unless `store` is '-'). Inputs are checked before the model loads, so a bad flag costs nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beyondscale._quiet_deps import quiet_third_party
from beyondscale.errors import UserError
from beyondscale.store import DEFAULT_STORE

NO_STORE = "-"


@dataclass(frozen=True)
class ProbeSettings:
    """What every probe shares: the model, where the result is stored ('-': nowhere), how it loads."""

    model: str
    store: str = DEFAULT_STORE
    device: str = "auto"
    dtype: str = "auto"


@dataclass
class ProbeOutput:
    """A probe's JSON document, plus what a terminal view needs besides it (`details`)."""

    doc: dict[str, Any]
    model: str
    details: dict[str, Any] = field(default_factory=dict)


def load(settings: ProbeSettings) -> Any:
    """The probe model (quiet: the command prints its own lines)."""
    from beyondscale.interpret.loading import load_probe_model

    quiet_third_party()
    return load_probe_model(settings.model, device=settings.device, dtype=settings.dtype)


def store_probe(settings: ProbeSettings, pm: Any, probe: str, version: str, data: str, doc: dict) -> None:
    from beyondscale.interpret import results

    if settings.store != NO_STORE:
        results.put_probe(settings.store, model_key=pm.key, probe=probe, probe_version=version, data=data,
                          model_name=pm.name, summary=doc, model_record=pm.record)


@dataclass(frozen=True)
class LensSettings(ProbeSettings):
    text: list[str] | None = None  # texts to read through the lens, or
    tasks: list[str] | None = None  # one task whose documents are read instead
    limit: int | None = None  # first N documents of the task
    affine_fit: int | None = None  # affine lens: per-layer translators fitted on N corpus documents


def _lens_texts(settings: LensSettings) -> list[str]:
    from beyondscale.interpret import lens

    if bool(settings.text) == bool(settings.tasks):
        raise UserError("explain lens: give either --text (one or more) or --tasks")
    if settings.tasks and len(settings.tasks) > 1:
        raise UserError(f"--tasks {','.join(settings.tasks)}: explain lens reads one task at a time")
    texts = list(settings.text or []) or lens.task_texts(settings.tasks[0], settings.limit)
    if any(not t.strip() for t in texts):
        raise UserError("--text: empty text; nothing to read through the lens")
    if settings.affine_fit is not None and settings.affine_fit < 1:
        raise UserError(f"--affine-fit {settings.affine_fit}: need at least one document")
    return texts


def explain_lens(settings: LensSettings) -> ProbeOutput:
    """Logit lens (or an affine lens): per layer, KL to the final distribution, top-1 agreement, depth."""
    from beyondscale.interpret import lens, results

    texts = _lens_texts(settings)
    pm = load(settings)
    translators, probe, version = None, "logit_lens", lens.PROBE_VERSION
    if settings.affine_fit is not None:
        from beyondscale.interpret import tuned

        translators = tuned.fit_affine_lens(pm.model, pm.tokenizer, tuned.corpus_texts(settings.affine_fit),
                                            pm.max_length)
        probe, version = "affine_lens", tuned.PROBE_VERSION
    res = lens.lens_texts(pm.model, pm.tokenizer, texts, pm.max_length, pm.name, translators)
    doc = res.to_json()
    if settings.affine_fit is not None:
        doc.update(lens="affine (least-squares translators, not the tuned lens)", fit_documents=settings.affine_fit)
    store_probe(settings, pm, probe, version, results.data_key({"texts": texts, "affine_fit": settings.affine_fit}),
                doc)
    return ProbeOutput(doc, pm.name, {"n_positions": res.n_positions, "prediction_depth": res.prediction_depth,
                                      "n_layers": res.n_layers})


def explain_transparency(settings: ProbeSettings) -> ProbeOutput:
    """Transparency checklist (inspired by the FMTI; not an FMTI score); `details['note']` when not stored."""
    from beyondscale.interpret import results, transparency

    doc = transparency.check(settings.model)
    details: dict[str, Any] = {}
    if settings.store != NO_STORE:
        from beyondscale.models import model_key, parse_model_ref

        try:
            ref = parse_model_ref(settings.model)  # the key an fp32 evaluation of the same weights gets
        except UserError as err:  # e.g. no config.json: the checklist still prints, nothing is stored
            details["note"] = f"not stored ({err})"
        else:
            results.put_probe(settings.store, model_key=model_key(ref, "float32"), probe="transparency",
                              probe_version=transparency.PROBE_VERSION, data=results.data_key(doc["items"]),
                              model_name=ref.name, summary=doc)
    return ProbeOutput(doc, settings.model, details)


@dataclass(frozen=True)
class RoutingSettings(ProbeSettings):
    text: str = ""  # the text whose tokens are routed
    html: str | None = None  # write heat maps here


def explain_routing(settings: RoutingSettings) -> ProbeOutput:
    """Expert routing of a Mixtral-style model: load, entropy, imbalance, token->expert, co-activation."""
    from beyondscale.interpret import results, routing

    if not settings.text.strip():
        raise UserError("--text: empty text; nothing to route")
    pm = load(settings)
    doc = routing.routing(pm.model, pm.tokenizer, settings.text, pm.max_length, pm.name)
    store_probe(settings, pm, "routing", routing.PROBE_VERSION, results.data_key({"text": settings.text}), doc)
    if settings.html:
        from beyondscale.interpret.html import page

        Path(settings.html).write_text(page(f"expert routing: {pm.name}", routing.routing_html(doc)),
                                       encoding="utf-8")
    return ProbeOutput(doc, pm.name)


@dataclass(frozen=True)
class AttributeSettings(ProbeSettings):
    text: str = ""  # the context
    target: str = ""  # the continuation whose log-likelihood is explained
    html: str = "attributions.html"  # the shaded view
    steps: int = 64  # integrated-gradients steps


def explain_attribute(settings: AttributeSettings) -> ProbeOutput:
    """A continuation's log-likelihood attributed to the context tokens (captum), plus attention entropy;
    `details['tokenizer']` renders the tokens."""
    from beyondscale.interpret import attribute, results
    from beyondscale.interpret.html import page

    if not settings.target.strip():
        raise UserError("--target: empty target; there is no continuation to explain")
    if settings.steps < 2:
        raise UserError(f"--steps {settings.steps}: need at least 2")
    pm = load(settings)
    prep = attribute.prepare(pm.tokenizer, settings.text, settings.target, pm.max_length)
    doc = {"model": pm.name, **attribute.attributions(pm.model, pm.tokenizer, prep, settings.steps),
           "attention_entropy": attribute.attention_entropy(pm.model, prep.ids)}
    Path(settings.html).write_text(page(f"attributions: {pm.name}", attribute.attribute_html(doc)),
                                   encoding="utf-8")
    store_probe(settings, pm, "attribution", attribute.PROBE_VERSION,
                results.data_key({"text": settings.text, "target": settings.target, "steps": settings.steps}), doc)
    return ProbeOutput(doc, pm.name, {"tokenizer": pm.tokenizer})
