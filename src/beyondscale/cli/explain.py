"""`beyondscale explain lens|attribute|routing|transparency`: each parses its flags into one settings
object, calls one function of `interpret.commands` and prints the document it returns."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from beyondscale import api
from beyondscale._quiet_deps import quiet_third_party as quiet  # noqa: F401 - the old name, still imported
from beyondscale._quiet_deps import setup_logging
from beyondscale.cli.flags import (
    DEFAULT_STORE,  # noqa: F401 - the old name, still imported
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    LogOpt,
    ModelOpt,
    aliased,
    from_flags,
    split_list,
)
from beyondscale.cli.flags import ProbeStoreOpt as StoreOpt
from beyondscale.interpret import commands

explain_app = typer.Typer(no_args_is_help=True, help="Look inside a model: logit lens, attributions, routing, "
                                                     "transparency.")
# `-t` is --tasks in every command; --text keeps `-t` as a hidden alias where a command reads no task.
command = aliased({"--task": "--tasks", "-t": "--text"})
lens_command = aliased({"--task": "--tasks"})
TextOpt = Annotated[str, typer.Option("--text", help="The text.")]


def _console():
    from rich.console import Console

    return Console()


def _print_json(doc: dict) -> None:
    print(json.dumps(doc))


@explain_app.command("lens", cls=lens_command)
def lens_cmd(
    model: ModelOpt,
    text: Annotated[list[str] | None, typer.Option("--text", help="Text(s) to read through the lens.")] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", "-t", help="Read a task's documents instead "
                                                    "(name or YAML).")] = None,
    limit: Annotated[int | None, typer.Option(help="First N documents of --tasks.")] = None,
    affine_fit: Annotated[int | None, typer.Option("--affine-fit", help="Affine lens: fit per-layer translators "
                                                   "on N offline corpus documents first.")] = None,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Logit lens: per layer, KL to the final distribution, top-1 agreement and prediction depth."""
    flags = dict(locals())
    setup_logging(log_level)
    result = api.explain_lens(from_flags(commands.LensSettings, flags, tasks=split_list(tasks) or None))
    if json_out:
        return _print_json(result.doc)
    from rich.table import Table

    info = result.details
    table = Table(title=f"logit lens: {result.model} ({info['n_positions']} positions)", title_justify="left")
    for col in ("layer", "KL to final (nats)", "top-1 agrees", "p(final top-1)"):
        table.add_column(col, justify="right")
    for row in result.doc["layers"]:
        table.add_row(str(row["layer"]), f"{row['kl_to_final']:.4f}", f"{row['top1_agrees']:.3f}",
                      f"{row['p_final_top1']:.4f}")
    _console().print(table)
    _console().print(f"prediction depth: {info['prediction_depth']:.2f} of {info['n_layers']} layers")


@explain_app.command("transparency", cls=command)
def transparency_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or hub id.")],
    store: StoreOpt = DEFAULT_STORE, json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Transparency checklist (inspired by the Foundation Model Transparency Index; not an FMTI score)."""
    flags = dict(locals())
    setup_logging(log_level)
    result = api.explain_transparency(from_flags(commands.ProbeSettings, flags))
    if "note" in result.details:
        typer.echo(f"note: {result.details['note']}", err=True)
    doc = result.doc
    if json_out:
        return _print_json(doc)
    from rich.table import Table

    table = Table(title=f"{doc['label']}: {model}", title_justify="left")
    for col in ("item", "met", "evidence"):
        table.add_column(col)
    for item in doc["items"]:
        table.add_row(item["item"], "yes" if item["met"] else "no", item["evidence"])
    _console().print(table)
    _console().print(f"score: {doc['met']} of {doc['total']} items met ({doc['score']:.0%})")


@explain_app.command("routing", cls=command)
def routing_cmd(
    model: ModelOpt,
    text: Annotated[str, typer.Option("--text", help="Text whose tokens are routed.")],
    html: Annotated[str | None, typer.Option("--html", help="Write heat maps to this HTML file.")] = None,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Expert routing of a Mixtral-style model: load, entropy, imbalance, token->expert, co-activation."""
    flags = dict(locals())
    setup_logging(log_level)
    result = api.explain_routing(from_flags(commands.RoutingSettings, flags))
    doc = result.doc
    if json_out:
        return _print_json(doc)
    from rich.table import Table

    table = Table(title=f"expert routing: {result.model} (top-{doc['top_k']} of {doc['n_experts']})",
                  title_justify="left")
    for col in ("layer", "load per expert", "router entropy", "load entropy", "imbalance"):
        table.add_column(col, justify="right")
    for r in doc["layers"]:
        table.add_row(str(r["layer"]), " ".join(f"{x:.2f}" for x in r["load"]), f"{r['router_entropy']:.3f}",
                      f"{r['load_entropy']:.3f} / {r['max_entropy']:.3f}", f"{r['imbalance']:.2f}")
    _console().print(table)


@explain_app.command("attribute", cls=command)
def attribute_cmd(
    model: ModelOpt,
    text: Annotated[str, typer.Option("--text", help="The context.")],
    target: Annotated[str, typer.Option("--target", help="The continuation whose log-likelihood is explained.")],
    html: Annotated[str, typer.Option("--html", help="Write the shaded view here.")] = "attributions.html",
    steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 64,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Attribute a continuation's log-likelihood to the context tokens (captum), plus attention entropy."""
    flags = dict(locals())
    from beyondscale.interpret import attribute

    setup_logging(log_level)
    result = api.explain_attribute(from_flags(commands.AttributeSettings, flags))
    doc = result.doc
    if json_out:
        return _print_json(doc)
    console = _console()
    console.print(f"log p(target | text) = {doc['target_logprob']:.4f} nats; red raises it, blue lowers it")
    for method, scores in doc["attributions"].items():
        console.print(f"{method:>22}: ",
                      attribute.shaded_text(doc["context_tokens"], scores, result.details["tokenizer"]))
    if not doc["ig_converged"]:
        console.print(f"note: integrated gradients did not converge (delta {doc['ig_convergence_delta']:.3g} nats); "
                      "raise --steps")
    console.print(f"HTML view: {html}")
