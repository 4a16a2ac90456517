"""The `beyondscale curate`, `curate-scorer` and `curate-rules` commands: each parses its flags into one
settings object and calls one function of `lab.curate.command`.

`register(app)` adds them to the main typer app; errors are `UserError`s, which the main entry
point prints as one line with exit status 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from beyondscale._quiet_deps import setup_logging
from beyondscale.cli.flags import JsonOpt, LogOpt, aliased, from_flags

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def _progress_bar(total: int | None) -> tuple[Any, Any]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("curate"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[docs]} docs, "
                   "{task.fields[kept]} kept"), TimeElapsedColumn(), console=err, transient=True)
    task = bar.add_task("curate", total=total, docs=0, kept=0)

    def update(nbytes: int, docs: int, kept: int) -> None:
        bar.update(task, completed=nbytes, docs=docs, kept=kept)

    return bar, update


def print_summary(doc: dict[str, Any]) -> None:
    """Counts per rule, then where the data went and its hashes."""
    table = Table(title=f"curate: kept {doc['kept']} of {doc['total']} documents "
                        f"({100 * doc['kept_fraction']:.1f} %)", title_justify="left")
    for col in ("Step", "Removed", "Reasons"):
        table.add_column(col, justify="right" if col == "Removed" else "left")
    for rule, count in doc["reasons"].items():
        details = doc.get("reason_details", {}).get(rule, {})
        table.add_row(rule, str(count), ", ".join(f"{k} {v}" for k, v in sorted(details.items(), key=lambda x: -x[1])))
    out.print(table)
    hist = doc.get("score_histogram")
    if hist:
        out.print("score histogram (P(high), 10 bins over [0, 1]): " + " ".join(map(str, hist["counts"])),
                  highlight=False)
    state = "reused an identical earlier run" if doc.get("reused") else (
        f"{doc['seconds']:.1f} s, {doc['docs_per_s']:.0f} docs/s, {doc['mb_per_s']:.2f} MB/s, "
        f"{doc['workers']} workers")
    out.print(f"{state}\nout: {doc['out']}\ndata_hash: {doc['data_hash']}\nrecipe_hash: {doc['recipe_hash']}",
              highlight=False, markup=False)


def curate_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Text files, folders, .jsonl files or hub:NAME datasets.")],
    out_dir: Annotated[str, typer.Option("--out", help="Output folder: kept/*.jsonl, removed/RULE.jsonl, "
                                                       "summary.json.")],
    rules: Annotated[str, typer.Option("--rules", help="Heuristic filters in order ('none' for none).")] =
    "gopher_repetition,gopher_quality,c4,fineweb",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a threshold: RULE.PARAM=VALUE.")] = None,
    dedup: Annotated[str, typer.Option(help="none, exact or minhash (exact then MinHash LSH).")] = "minhash",
    minhash_threshold: Annotated[float, typer.Option(help="Jaccard similarity that makes a near-duplicate.")] = 0.8,
    scorer: Annotated[str, typer.Option(help="'none' or a scorer file from `beyondscale curate-scorer`.")] = "none",
    score_threshold: Annotated[float | None, typer.Option(help="Keep P(high) >= X (default 0.5).")] = None,
    keep_fraction: Annotated[float | None, typer.Option(help="Keep the top F of scored documents.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    text_field: Annotated[str, typer.Option(help="JSONL / hub field holding the text.")] = "text",
    hub_split: Annotated[str, typer.Option(help="Split of hub:NAME inputs.")] = "train",
    hub_config: Annotated[str | None, typer.Option(help="Config of hub:NAME inputs.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an output folder holding another run.")] = False,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Filter, deduplicate and score a corpus with FineWeb's rules (datatrove); keep the best."""
    flags = dict(locals())
    from beyondscale.api import curate
    from beyondscale.lab.curate.command import CurateRequest, input_bytes

    setup_logging(log_level)
    request = from_flags(CurateRequest, flags, out=out_dir, set=set_ or [])
    if json_out or not err.is_terminal:
        doc = curate(request)
    else:
        bar, update = _progress_bar(input_bytes(request))
        with bar:
            doc = curate(request, progress=update)
    if json_out:
        print(json.dumps(doc))
    else:
        print_summary(doc)


def curate_scorer_cmd(
    high: Annotated[list[str], typer.Option("--high", help="High-quality examples (files, folders, .jsonl).")],
    low: Annotated[list[str], typer.Option("--low", help="Low-quality examples (files, folders, .jsonl).")],
    out_path: Annotated[str, typer.Option("--out", help="Where to save the scorer (.safetensors).")],
    text_field: Annotated[str, typer.Option(help="JSONL field holding the text.")] = "text",
    c: Annotated[float, typer.Option("--c", help="Inverse L2 strength of the logistic regression.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split and the fit.")] = 0,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Train the quality scorer (hashed n-grams + logistic regression) from high / low examples."""
    flags = dict(locals())
    from beyondscale.api import train_quality_scorer
    from beyondscale.lab.curate.command import ScorerRequest

    setup_logging(log_level)
    doc = train_quality_scorer(from_flags(ScorerRequest, flags, out=out_path))
    if json_out:
        print(json.dumps(doc))
        return
    held = (f"held-out accuracy {doc['heldout_accuracy']:.3f}, AUC {doc['heldout_auc']:.3f} on {doc['heldout_n']} "
            "documents" if "heldout_accuracy" in doc else "too few examples for a held-out check (need 10 a side)")
    out.print(f"trained on {doc['n_high']} high / {doc['n_low']} low in {doc['train_seconds']:.2f} s; {held}\n"
              f"saved {doc['out']} (sha256 {doc['sha256']})", highlight=False, markup=False)


def curate_rules_cmd(json_out: JsonOpt = False, log_level: LogOpt = "warning") -> None:
    """The heuristic rules' threshold table (published defaults), as `--set RULE.PARAM=VALUE` sees it."""
    from rich.markup import escape

    from beyondscale.lab.curate.command import rules_table

    setup_logging(log_level)
    rows = rules_table()
    if json_out:
        print(json.dumps(rows))
        return
    table = Table(title="curate rules (datatrove's filters; defaults as published)", title_justify="left")
    for col in ("Rule", "Parameter", "Default", "Range", "Meaning"):
        table.add_column(col)
    for row in rows:
        bounds = "true/false" if isinstance(row["default"], bool) else f"[{row['low']}, {row['high'] or 'inf'}]"
        table.add_row(row["rule"], row["param"], str(row["default"]), bounds + (", none" if row["can_be_none"] else ""),
                      escape(row["meaning"]))
    out.print(table)


def register(app: typer.Typer, cls: Any = None) -> None:
    """Add `curate`, `curate-scorer` and `curate-rules` to the main app (`cls`: the command class)."""
    cls = cls or aliased()
    app.command("curate", cls=cls)(curate_cmd)
    app.command("curate-scorer", cls=cls)(curate_scorer_cmd)
    app.command("curate-rules", cls=cls)(curate_rules_cmd)
