"""`beyondscale explain lens|attribute|routing|transparency`: thin wrappers over beyondscale.interpret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from beyondscale.errors import UserError
from beyondscale.interpret.html import page

explain_app = typer.Typer(no_args_is_help=True, help="Look inside a model: logit lens, attributions, routing, "
                                                     "transparency.")

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Hub id, HF folder or .gguf file.")]
StoreOpt = Annotated[str, typer.Option("--store", help="Results database (SQLite); '-' stores nothing.")]
DEFAULT_STORE = "beyondscale.db"  # the same default as every other command
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only a JSON document on stdout.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
DtypeOpt = Annotated[str, typer.Option(help="auto (fp32 on CPU), float32, bfloat16, float16.")]


def quiet() -> None:
    """No progress bars or warnings from transformers on the terminal (the CLI prints its own lines)."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _console():
    from rich.console import Console

    return Console()


def _affine(pm, n_docs: int | None) -> tuple[list | None, str, str]:
    """(translators, probe name, probe version): the plain logit lens unless --affine-fit is given."""
    from beyondscale.interpret import lens

    if n_docs is None:
        return None, "logit_lens", lens.PROBE_VERSION
    from beyondscale.interpret import tuned

    if n_docs < 1:
        raise UserError(f"--affine-fit {n_docs}: need at least one document")
    translators = tuned.fit_affine_lens(pm.model, pm.tokenizer, tuned.corpus_texts(n_docs), pm.max_length)
    return translators, "affine_lens", tuned.PROBE_VERSION


@explain_app.command("lens")
def lens_cmd(
    model: ModelOpt,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="Text(s) to read through the lens.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Read a task's documents instead (name or YAML).")] = None,
    limit: Annotated[int | None, typer.Option(help="First N documents of --task.")] = None,
    affine_fit: Annotated[int | None, typer.Option("--affine-fit", help="Affine lens: fit per-layer translators "
                                                   "on N offline corpus documents first.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Logit lens: per layer, KL to the final distribution, top-1 agreement and prediction depth."""
    from beyondscale.interpret import lens, results
    from beyondscale.interpret.loading import load_probe_model

    if bool(text) == bool(task):
        raise UserError("explain lens: give either --text (one or more) or --task")
    texts = list(text or []) or lens.task_texts(task, limit)
    for t in texts:
        if not t.strip():
            raise UserError("--text: empty text; nothing to read through the lens")
    quiet()
    pm = load_probe_model(model, device=device, dtype=dtype)
    translators, probe, version = _affine(pm, affine_fit)
    res = lens.lens_texts(pm.model, pm.tokenizer, texts, pm.max_length, pm.name, translators)
    doc = res.to_json()
    if affine_fit is not None:
        doc.update(lens="affine (least-squares translators, not the tuned lens)", fit_documents=affine_fit)
    if store != "-":
        results.put_probe(store, model_key=pm.key, probe=probe, probe_version=version,
                          data=results.data_key({"texts": texts, "affine_fit": affine_fit}), model_name=pm.name,
                          summary=doc, model_record=pm.record)
    if json_out:
        print(json.dumps(doc))
        return
    from rich.table import Table

    table = Table(title=f"logit lens: {pm.name} ({res.n_positions} positions)", title_justify="left")
    for col in ("layer", "KL to final (nats)", "top-1 agrees", "p(final top-1)"):
        table.add_column(col, justify="right")
    for row in doc["layers"]:
        table.add_row(str(row["layer"]), f"{row['kl_to_final']:.4f}", f"{row['top1_agrees']:.3f}",
                      f"{row['p_final_top1']:.4f}")
    _console().print(table)
    _console().print(f"prediction depth: {res.prediction_depth:.2f} of {res.n_layers} layers")


@explain_app.command("transparency")
def transparency_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or hub id.")],
    store: StoreOpt = DEFAULT_STORE,
    json_out: JsonOpt = False,
) -> None:
    """Transparency checklist (inspired by the Foundation Model Transparency Index; not an FMTI score)."""
    from beyondscale.interpret import results, transparency

    doc = transparency.check(model)
    if store != "-":
        from beyondscale.models import model_key, parse_model_ref

        try:
            ref = parse_model_ref(model)  # the key an fp32 evaluation of the same weights gets
        except UserError as err:  # e.g. no config.json: the checklist still prints, nothing is stored
            typer.echo(f"note: not stored ({err})", err=True)
        else:
            results.put_probe(store, model_key=model_key(ref, "float32"), probe="transparency",
                              probe_version=transparency.PROBE_VERSION, data=results.data_key(doc["items"]),
                              model_name=ref.name, summary=doc)
    if json_out:
        print(json.dumps(doc))
        return
    from rich.table import Table

    table = Table(title=f"{doc['label']}: {model}", title_justify="left")
    for col in ("item", "met", "evidence"):
        table.add_column(col)
    for item in doc["items"]:
        table.add_row(item["item"], "yes" if item["met"] else "no", item["evidence"])
    _console().print(table)
    _console().print(f"score: {doc['met']} of {doc['total']} items met ({doc['score']:.0%})")


@explain_app.command("routing")
def routing_cmd(
    model: ModelOpt,
    text: Annotated[str, typer.Option("--text", "-t", help="Text whose tokens are routed.")],
    html: Annotated[str | None, typer.Option("--html", help="Write heat maps to this HTML file.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Expert routing of a Mixtral-style model: load, entropy, imbalance, token->expert, co-activation."""
    from beyondscale.interpret import results, routing
    from beyondscale.interpret.loading import load_probe_model

    if not text.strip():
        raise UserError("--text: empty text; nothing to route")
    quiet()
    pm = load_probe_model(model, device=device, dtype=dtype)
    doc = routing.routing(pm.model, pm.tokenizer, text, pm.max_length, pm.name)
    if store != "-":
        results.put_probe(store, model_key=pm.key, probe="routing", probe_version=routing.PROBE_VERSION,
                          data=results.data_key({"text": text}), model_name=pm.name, summary=doc,
                          model_record=pm.record)
    if html:
        from beyondscale.interpret.html import page

        Path(html).write_text(page(f"expert routing: {pm.name}", routing.routing_html(doc)), encoding="utf-8")
    if json_out:
        print(json.dumps(doc))
        return
    from rich.table import Table

    table = Table(title=f"expert routing: {pm.name} (top-{doc['top_k']} of {doc['n_experts']})", title_justify="left")
    for col in ("layer", "load per expert", "router entropy", "load entropy", "imbalance"):
        table.add_column(col, justify="right")
    for r in doc["layers"]:
        table.add_row(str(r["layer"]), " ".join(f"{x:.2f}" for x in r["load"]), f"{r['router_entropy']:.3f}",
                      f"{r['load_entropy']:.3f} / {r['max_entropy']:.3f}", f"{r['imbalance']:.2f}")
    _console().print(table)


@explain_app.command("attribute")
def attribute_cmd(
    model: ModelOpt,
    text: Annotated[str, typer.Option("--text", "-t", help="The context.")],
    target: Annotated[str, typer.Option("--target", help="The continuation whose log-likelihood is explained.")],
    html: Annotated[str, typer.Option("--html", help="Write the shaded view here.")] = "attributions.html",
    steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 64,
    store: StoreOpt = DEFAULT_STORE,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Attribute a continuation's log-likelihood to the context tokens (captum), plus attention entropy."""
    from beyondscale.interpret import attribute, results
    from beyondscale.interpret.loading import load_probe_model

    if not target.strip():
        raise UserError("--target: empty target; there is no continuation to explain")
    if steps < 2:
        raise UserError(f"--steps {steps}: need at least 2")
    quiet()
    pm = load_probe_model(model, device=device, dtype=dtype)
    prep = attribute.prepare(pm.tokenizer, text, target, pm.max_length)
    doc = {"model": pm.name, **attribute.attributions(pm.model, pm.tokenizer, prep, steps),
           "attention_entropy": attribute.attention_entropy(pm.model, prep.ids)}
    Path(html).write_text(page(f"attributions: {pm.name}", attribute.attribute_html(doc)), encoding="utf-8")
    if store != "-":
        results.put_probe(store, model_key=pm.key, probe="attribution", probe_version=attribute.PROBE_VERSION,
                          data=results.data_key({"text": text, "target": target, "steps": steps}),
                          model_name=pm.name, summary=doc, model_record=pm.record)
    if json_out:
        print(json.dumps(doc))
        return
    console = _console()
    console.print(f"log p(target | text) = {doc['target_logprob']:.4f} nats; red raises it, blue lowers it")
    for method, scores in doc["attributions"].items():
        console.print(f"{method:>22}: ", attribute.shaded_text(doc["context_tokens"], scores, pm.tokenizer))
    if not doc["ig_converged"]:
        console.print(f"note: integrated gradients did not converge (delta {doc['ig_convergence_delta']:.3g} nats); "
                      "raise --steps")
    console.print(f"HTML view: {html}")
