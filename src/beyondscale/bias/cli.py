"""`beyondscale bias crows-pairs|bbq|counterfactual`: thin wrappers over beyondscale.bias.

Data files are read and checked before the model loads, so a malformed file costs nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from beyondscale.interpret.cli import DEFAULT_STORE, DeviceOpt, DtypeOpt, JsonOpt, ModelOpt, StoreOpt

bias_app = typer.Typer(no_args_is_help=True, help="Bias probes: CrowS-Pairs, BBQ, counterfactual sentences.")



def _finish(doc: dict[str, Any], pm: Any, probe: str, version: str, data: str, store: str | None,
            json_out: bool, rows: list[tuple[str, dict[str, Any]]], columns: tuple[str, ...]) -> None:
    from beyondscale.interpret import results

    doc = results.nan_to_none({"model": pm.name, "model_key": pm.key, **doc})
    if store != "-":
        results.put_probe(store, model_key=pm.key, probe=probe, probe_version=version, data=data,
                          model_name=pm.name, summary=doc, model_record=pm.record)
    if json_out:
        print(json.dumps(doc))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{probe}: {pm.name}", title_justify="left")
    for col in ("group", "n", *columns):
        table.add_column(col, justify="left" if col == "group" else "right")
    for label, values in results.nan_to_none(rows):
        table.add_row(label, str(values.get("n", "")),
                      *("—" if values.get(c) is None else f"{values[c]:.4f}" for c in columns))
    Console(width=160).print(table)


def _load(model: str, device: str, dtype: str):
    from beyondscale.interpret.cli import quiet
    from beyondscale.interpret.loading import load_probe_model

    quiet()
    return load_probe_model(model, device=device, dtype=dtype)


@bias_app.command("crows-pairs")
def crows_cmd(
    model: ModelOpt,
    data: Annotated[str, typer.Option("--data", help="CrowS-Pairs CSV/JSONL, or hub:ORG/NAME[:CONFIG].")],
    invalid: Annotated[str | None, typer.Option("--invalid", help="File of pair ids known to be invalid.")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 1234,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
) -> None:
    """CrowS-Pairs as lm-eval scores crows_pairs_english: pct_stereotype, likelihood_diff, per bias type."""
    from beyondscale.bias import crows
    from beyondscale.interpret import results

    pairs = crows.read_pairs(data)
    bad = crows.read_invalid_ids(invalid) if invalid else None
    pm = _load(model, device, dtype)
    doc, _ = crows.score_crows(pm.model, pm.tokenizer, pairs, bad, seed)
    key = results.data_key({"pairs": [p.__dict__ for p in pairs], "invalid": sorted(bad or []), "seed": seed})
    rows = [("all", doc), *((f"bias_type={k}", v) for k, v in doc["per_bias_type"].items())]
    _finish(doc, pm, "crows_pairs", crows.PROBE_VERSION, key, store, json_out, rows,
            ("pct_stereotype", "likelihood_diff"))


@bias_app.command("bbq")
def bbq_cmd(
    model: ModelOpt,
    data: Annotated[str, typer.Option("--data", help="BBQ JSONL (the authors' field names).")],
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
) -> None:
    """BBQ as lm-eval's bbq task: accuracy (ambiguous / disambiguated), s_DIS, s_AMB, per category."""
    from beyondscale.bias import bbq
    from beyondscale.interpret import results

    docs = bbq.read_bbq(data)
    pm = _load(model, device, dtype)
    doc, _ = bbq.score_bbq(pm.model, pm.tokenizer, docs)
    key = results.file_key(data)
    rows = [("all", doc), *((f"category={k}", v) for k, v in doc["per_category"].items()),
            *((f"context={k}", v) for k, v in doc["per_context_condition"].items())]
    _finish(doc, pm, "bbq", bbq.PROBE_VERSION, key, store, json_out, rows,
            ("acc", "accuracy_amb", "accuracy_disamb", "amb_bias_score", "disamb_bias_score"))


@bias_app.command("counterfactual")
def counterfactual_cmd(
    model: ModelOpt,
    probes: Annotated[str | None, typer.Option("--probes", help="A probe-set JSON (default: the packaged one).")] = None,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
) -> None:
    """Log-likelihood gaps between sentences that differ only in a demographic term (offline probe set)."""
    from beyondscale.bias import counterfactual as cf

    probe_set = cf.load_probe_set(probes)
    pm = _load(model, device, dtype)
    doc = cf.run_counterfactual(pm.model, pm.tokenizer, probe_set)
    rows = [(f"{axis}: {term} vs {v['reference']}",
             {"n": t["attribute_gap"]["n"], "attribute_gap": t["attribute_gap"]["mean"],
              "raw_gap": t["raw_gap"]["mean"], "neutral_gap": t["neutral_gap"]})
            for axis, v in doc["per_axis"].items() for term, t in v["terms"].items()]
    _finish(doc, pm, "counterfactual", f"cf-{probe_set['version']}", probe_set["content_sha256"], store, json_out,
            rows, ("attribute_gap", "raw_gap", "neutral_gap"))


@bias_app.command("toxicity")
def toxicity_cmd(
    model: ModelOpt,
    classifier: Annotated[str, typer.Option("--classifier", help="Local HF sequence-classification folder.")],
    label: Annotated[str | None, typer.Option("--label", help="The classifier's toxic label name.")] = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help="One prompt per line (default: probe-set "
                                                                   "stems).")] = None,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
) -> None:
    """Toxicity of greedy continuations, scored by a local classifier you point to (nothing is downloaded)."""
    from beyondscale.bias import toxicity
    from beyondscale.interpret import results

    prompt_list = toxicity.read_prompts(prompts) if prompts else toxicity.default_prompts()
    clf = toxicity.load_classifier(classifier, label)
    pm = _load(model, device, dtype)
    doc = toxicity.score_toxicity(pm.model, pm.tokenizer, clf, prompt_list)
    from beyondscale.models import parse_model_ref

    key = results.data_key({"prompts": prompt_list, "classifier": parse_model_ref(classifier).identity(),
                            "label": clf[2]})
    rows = [("all", doc), *((f"group={k}", v) for k, v in doc["per_group"].items())]
    _finish(doc, pm, "toxicity", toxicity.PROBE_VERSION, key, store, json_out, rows, ("mean_toxicity",))
