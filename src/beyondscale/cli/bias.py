"""`beyondscale bias crows-pairs|bbq|counterfactual|toxicity`: each parses its flags into one settings
object, calls one function of `bias.commands` and prints the document it returns."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from beyondscale import api
from beyondscale._quiet_deps import setup_logging
from beyondscale.bias import commands
from beyondscale.cli.flags import (
    DEFAULT_STORE,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    LogOpt,
    ModelOpt,
    aliased,
    from_flags,
)
from beyondscale.cli.flags import ProbeStoreOpt as StoreOpt
from beyondscale.interpret.commands import ProbeOutput

bias_app = typer.Typer(no_args_is_help=True, help="Bias probes: CrowS-Pairs, BBQ, counterfactual sentences.")
command = aliased()


def _show(result: ProbeOutput, json_out: bool) -> None:
    if json_out:
        print(json.dumps(result.doc))
        return
    from rich.console import Console
    from rich.table import Table

    columns = result.details["columns"]
    table = Table(title=f"{result.details['probe']}: {result.model}", title_justify="left")
    for col in ("group", "n", *columns):
        table.add_column(col, justify="left" if col == "group" else "right")
    for label, values in result.details["rows"]:
        table.add_row(label, str(values.get("n", "")),
                      *("—" if values.get(c) is None else f"{values[c]:.4f}" for c in columns))
    Console(width=160).print(table)


@bias_app.command("crows-pairs", cls=command)
def crows_cmd(
    model: ModelOpt,
    data: Annotated[str, typer.Option("--data", help="CrowS-Pairs CSV/JSONL, or hub:ORG/NAME[:CONFIG].")],
    invalid: Annotated[str | None, typer.Option("--invalid", help="File of pair ids known to be invalid.")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 1234,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """CrowS-Pairs as lm-eval scores crows_pairs_english: pct_stereotype, likelihood_diff, per bias type."""
    flags = dict(locals())
    setup_logging(log_level)
    _show(api.bias_crows_pairs(from_flags(commands.CrowsSettings, flags)), json_out)


@bias_app.command("bbq", cls=command)
def bbq_cmd(
    model: ModelOpt,
    data: Annotated[str, typer.Option("--data", help="BBQ JSONL (the authors' field names).")],
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """BBQ as lm-eval's bbq task: accuracy (ambiguous / disambiguated), s_DIS, s_AMB, per category."""
    flags = dict(locals())
    setup_logging(log_level)
    _show(api.bias_bbq(from_flags(commands.BbqSettings, flags)), json_out)


@bias_app.command("counterfactual", cls=command)
def counterfactual_cmd(
    model: ModelOpt,
    probes: Annotated[str | None, typer.Option("--probes", help="A probe-set JSON (default: the packaged one).")] = None,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Log-likelihood gaps between sentences that differ only in a demographic term (offline probe set)."""
    flags = dict(locals())
    setup_logging(log_level)
    _show(api.bias_counterfactual(from_flags(commands.CounterfactualSettings, flags)), json_out)


@bias_app.command("toxicity", cls=command)
def toxicity_cmd(
    model: ModelOpt,
    classifier: Annotated[str, typer.Option("--classifier", help="Local HF sequence-classification folder.")],
    label: Annotated[str | None, typer.Option("--label", help="The classifier's toxic label name.")] = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help="One prompt per line (default: probe-set "
                                                                   "stems).")] = None,
    store: StoreOpt = DEFAULT_STORE, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto", json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Toxicity of greedy continuations, scored by a local classifier you point to (nothing is downloaded)."""
    flags = dict(locals())
    setup_logging(log_level)
    _show(api.bias_toxicity(from_flags(commands.ToxicitySettings, flags)), json_out)
