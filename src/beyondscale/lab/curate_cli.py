"""The `beyondscale curate` and `beyondscale curate-scorer` commands (thin typer wrappers).

`register(app)` adds both to the main typer app; errors are `UserError`s, which the main entry
point prints as one line with exit status 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from beyondscale.errors import UserError

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def _rules_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


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
    json_out: Annotated[bool, typer.Option("--json", help="Print only the summary JSON on stdout.")] = False,
) -> None:
    """Filter, deduplicate and score a corpus with FineWeb's rules (datatrove); keep the best."""
    from beyondscale.lab.curate import CurateSettings, reader, run_curate
    from beyondscale.lab.curate import rules as rule_table

    names = [] if rules.strip().lower() == "none" else _rules_list(rules)
    rule_table.check_rules(names)
    settings = CurateSettings(
        rules=names, overrides=rule_table.parse_overrides(set_ or [], names), dedup=dedup,
        minhash_threshold=minhash_threshold, scorer=None if scorer.lower() == "none" else scorer,
        score_threshold=score_threshold, keep_fraction=keep_fraction, overwrite=overwrite,
        hub=reader.HubOptions(config=hub_config, split=hub_split, text_field=text_field),
    )
    if workers is not None:
        settings.workers = workers
    if json_out or not err.is_terminal:
        doc = run_curate(inputs, out_dir, settings)
    else:
        bar, update = _progress_bar(reader.input_bytes(inputs))
        with bar:
            doc = run_curate(inputs, out_dir, settings, progress=update)
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
    seed: int = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print only a JSON document on stdout.")] = False,
) -> None:
    """Train the quality scorer (hashed n-grams + logistic regression) from high / low examples."""
    from beyondscale.lab.curate import reader
    from beyondscale.lab.curate.scorer import train_scorer

    if not c > 0:
        raise UserError(f"--c {c}: must be positive")
    options = reader.HubOptions(text_field=text_field)
    texts = {side: [d.text for d in reader.iter_documents(paths, options)] for side, paths in
             (("high", high), ("low", low))}
    model = train_scorer(texts["high"], texts["low"], c=c, seed=seed)
    digest = model.save(out_path)
    doc = {"out": out_path, "sha256": digest, **model.info}
    if json_out:
        print(json.dumps(doc))
        return
    held = (f"held-out accuracy {doc['heldout_accuracy']:.3f}, AUC {doc['heldout_auc']:.3f} on {doc['heldout_n']} "
            "documents" if "heldout_accuracy" in doc else "too few examples for a held-out check (need 10 a side)")
    out.print(f"trained on {doc['n_high']} high / {doc['n_low']} low in {doc['train_seconds']:.2f} s; {held}\n"
              f"saved {out_path} (sha256 {digest})", highlight=False, markup=False)


def curate_rules_cmd(json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False) -> None:
    """The heuristic rules' threshold table (published defaults), as `--set RULE.PARAM=VALUE` sees it."""
    from rich.markup import escape

    from beyondscale.lab.curate.rules import RULES

    rows = [{"rule": rule, "param": name, "default": p.default, "low": p.low, "high": p.high,
             "can_be_none": p.optional, "meaning": p.note, "source": spec.paper}
            for rule, spec in RULES.items() for name, p in spec.params.items()]
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


def register(app: typer.Typer) -> None:
    """Add `curate`, `curate-scorer` and `curate-rules` to the main app."""
    app.command("curate")(curate_cmd)
    app.command("curate-scorer")(curate_scorer_cmd)
    app.command("curate-rules")(curate_rules_cmd)
