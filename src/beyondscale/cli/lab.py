"""`beyondscale train` and `beyondscale sweep`: each parses its flags into one settings object and calls
one function of `lab.commands` (`train`, `sweep`).

Imports are lazy so `beyondscale --help` does not load torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from beyondscale import track
from beyondscale._quiet_deps import setup_logging
from beyondscale.cli import executors as xcli
from beyondscale.cli.flags import DEFAULT_STORE, JsonOpt, LogOpt, StoreOpt, aliased, from_flags
from beyondscale.cli.tracking import TrackerArgsOpt, TrackerOpt, trackers

Opt = typer.Option


def train_cmd(
    data: Annotated[str, Opt("--data", help="Text file, JSONL file ({'text': ...}) or a `curate` output folder.")],
    out: Annotated[str, Opt("--out", help="Output folder (a Hugging Face model folder).")],
    arch: Annotated[str, Opt(help="dense (Llama) or moe (Mixtral).")] = "dense",
    tokens: Annotated[int | None, Opt(help="Training tokens (default 600k: a couple of minutes on 2 cores).")] = None,
    d_model: Annotated[int, Opt(help="Hidden size.")] = 128,
    n_layer: Annotated[int, Opt(help="Layers.")] = 4,
    n_head: Annotated[int, Opt(help="Attention heads.")] = 4,
    n_kv_head: Annotated[int | None, Opt(help="Key/value heads (default: n_head).")] = None,
    d_ff: Annotated[int | None, Opt(help="MLP width, per expert for MoE (default 8/3 d_model).")] = None,
    context_length: Annotated[int, Opt(help="Tokens per training window.")] = 128,
    n_experts: Annotated[int, Opt(help="MoE: experts per layer (num_local_experts).")] = 8,
    top_k: Annotated[int, Opt(help="MoE: experts per token (num_experts_per_tok).")] = 2,
    vocab_size: Annotated[int, Opt(help="Byte-level BPE vocabulary trained on the data.")] = 2048,
    tokenizer: Annotated[str | None, Opt(help="Use this HF tokenizer instead of training one.")] = None,
    batch_size: Annotated[int, Opt(help="Windows per micro-batch.")] = 16,
    grad_accum: Annotated[int, Opt(help="Micro-batches per optimiser step.")] = 1,
    lr: Annotated[float, Opt(help="Peak learning rate (warm-up then cosine).")] = 3e-3,
    warmup_steps: Annotated[int | None, Opt(help="Warm-up steps (default 5% of the steps).")] = None,
    aux_coef: Annotated[float, Opt(help="MoE load-balancing loss coefficient.")] = 0.01,
    z_coef: Annotated[float, Opt(help="MoE router z-loss coefficient.")] = 0.001,
    distill_from: Annotated[str | None, Opt(help="Teacher model folder (same tokenizer).")] = None,
    distill_alpha: Annotated[float, Opt(help="Weight of the KL term (1 - alpha on the data loss).")] = 0.5,
    distill_temperature: Annotated[float, Opt(help="Softmax temperature of the KL term.")] = 2.0,
    val_fraction: Annotated[float, Opt(help="Share of the token stream held out for validation (at most 1M tokens).")] = 0.1,
    val_data: Annotated[str | None, Opt(help="Validation corpus shared across runs (then all of --data trains).")] = None,
    eval_every: Annotated[int | None, Opt(help="Steps between validation points (default 10 per run).")] = None,
    seed: Annotated[int, Opt(help="Initialisation and data-order seed.")] = 0,
    compile: Annotated[bool | None, Opt("--compile/--no-compile", help="torch.compile the model (default: "
                       "only runs of 1,000+ steps, which repay the compile time).")] = None,
    device: Annotated[str, Opt(help="cpu, cuda or auto.")] = "auto",
    resume: Annotated[bool, Opt("--resume/--no-resume", help="Continue the run whose checkpoint is in --out.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite/--no-overwrite", help="Replace the run in --out.")] = False,
    store: StoreOpt = DEFAULT_STORE,
    tracker: TrackerOpt = None,
    tracker_args: TrackerArgsOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Train a dense (Llama) or MoE (Mixtral) model into a standard Hugging Face folder."""
    flags = dict(locals())
    from beyondscale.api import train
    from beyondscale.lab.run import TrainRequest

    setup_logging(log_level)
    with trackers(tracker, tracker_args) as opened:
        record = train(from_flags(TrainRequest, flags, show_progress=not json_out))
        track.log_training(opened, record)
    if json_out:
        print(json.dumps({k: v for k, v in record.items() if k != "loss_curve"}, default=str))
        return
    _print_summary(record)


def _print_summary(r: dict) -> None:
    from rich.console import Console

    c = Console(width=None if sys.stdout.isatty() else 150)
    c.print(f"trained {r['arch']} {r['architecture']}: {r['params_total']:,} parameters "
            f"({r['params_active']:,} active), {r['tokens']:,} tokens, {r['train_flops']:.3g} FLOPs")
    c.print(f"validation loss {r['val_loss']:.4f} (train {r['train_loss']:.4f}); {r['wall_s']:.1f} s, "
            f"{r['tokens_per_s']:,.0f} tok/s, MFU {(r['mfu'] or 0):.1%}, energy {r['energy_j']:.0f} J "
            f"({r['energy_source']})")
    if r.get("moe_layers"):
        for i, layer in enumerate(r["moe_layers"]):
            c.print(f"layer {i}: load entropy {layer['entropy']:.3f}, imbalance {layer['imbalance']:.2f}")
    c.print(f"wrote {r['out']}")


def sweep_cmd(
    data: Annotated[str, Opt("--data", help="Raw corpus: text file, JSONL file or folder.")],
    out: Annotated[str, Opt("--out", help="Sweep folder (runs/, data/, sweep.json); re-running resumes.")],
    curated: Annotated[str | None, Opt(help="A `beyondscale curate` output of the same corpus.")] = None,
    preset: Annotated[str, Opt(help="cpu (minutes on 2 cores) or gpu (a single GPU, hours).")] = "cpu",
    tokens: Annotated[list[int] | None, Opt(help="Training tokens per rung (default: the preset's); repeat it "
                                                 "to train the dense rungs at each budget (an L(N, D) ladder; "
                                                 "the alternatives train at the first).")] = None,
    tasks: Annotated[list[str] | None, Opt("--tasks", "-t", help="Extra tasks to evaluate every model on.")] = None,
    device: Annotated[str, Opt(help="cpu, cuda or auto.")] = "auto",
    store: StoreOpt = DEFAULT_STORE,
    executor: xcli.ExecutorOpt = "local", ray_address: xcli.RayAddressOpt = None, max_retries: xcli.MaxRetriesOpt = 2,
    ray_cpus: xcli.RayCpusOpt = 1.0, ray_gpus: xcli.RayGpusOpt = None, ray_memory_gb: xcli.RayMemoryOpt = None,
    tracker: TrackerOpt = None,
    tracker_args: TrackerArgsOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Dense ladder, MoE at a rung's active size, raw vs curated, distilled rung; multipliers in dense compute."""
    flags = dict(locals())
    from beyondscale.api import sweep
    from beyondscale.cli.flags import split_list
    from beyondscale.executors.choice import ExecutorSettings
    from beyondscale.lab.commands import SweepSettings

    setup_logging(log_level)
    with trackers(tracker, tracker_args) as opened:
        doc = sweep(from_flags(SweepSettings, flags, tasks=split_list(tasks) or None, show_progress=not json_out,
                               executor=from_flags(ExecutorSettings, flags)))
        group = f"sweep-{Path(out).name}"
        for row in doc["rungs"]:
            track.log_training(opened, row["out"], group=group)
        track.log_evaluation(opened, track.stored_result(store, group))
    if json_out:
        print(json.dumps(doc, default=str))
        return
    _print_sweep(doc)


def _print_sweep(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    clean = any("val_loss_clean" in r for r in doc["rungs"])
    budgets = doc.get("token_budgets") or [doc["tokens_per_rung"]]
    several = len(budgets) > 1
    title = (f"{doc['tokens_per_rung']:,} tokens per rung" if not several else
             f"dense rungs at {', '.join(f'{t:,}' for t in budgets[:-1])} and {budgets[-1]:,} tokens, the "
             f"alternatives and the multipliers' dense fit at "
             f"{doc['tokens_per_rung']:,}")
    table = Table(title=f"sweep ({doc['preset']}, {title})", title_justify="left")
    for col in ("rung", "params", "active", *(["tokens"] if several else []), "FLOPs", "val loss",
                *(["val loss (clean)"] if clean else []), "train loss", "gap", "memorised", "wall s"):
        table.add_column(col, justify="left" if col == "rung" else "right")
    for r in doc["rungs"]:
        m = r["memorisation"]
        table.add_row(r["name"], f"{r['params_total']:,}", f"{r['params_active']:,}",
                      *([f"{r['tokens']:,}"] if several else []), f"{r['train_flops']:.3g}",
                      f"{r['val_loss']:.4f}", *([f"{r.get('val_loss_clean', float('nan')):.4f}"] if clean else []),
                      f"{r['train_loss']:.4f}", f"{r['generalisation_gap']:+.4f}", f"{m['memorised']}/{m['samples']}",
                      f"{r['wall_s']:.1f}")
    console.print(table)
    for key, what in (("compute_equivalent", "all held-out documents"),
                      ("compute_equivalent_clean", "held-out documents the curation keeps")):
        if key in doc:
            _print_multipliers(console, doc[key], what)


def _print_multipliers(console, eq: dict, what: str) -> None:
    from rich.table import Table

    if "error" in eq:
        console.print(f"compute-equivalent multipliers ({what}): {eq['error']}")
        return
    mult = Table(title=f"worth in dense compute, loss on {what} (dense loss-vs-FLOPs fit, 95% bootstrap CI)",
                 title_justify="left")
    for col in ("alternative", "val loss", "FLOPs", "multiplier", "95% CI", "wall vs matched dense", "note"):
        mult.add_column(col, justify="left" if col in ("alternative", "note") else "right")
    for m in eq["multipliers"]:
        mult.add_row(m["name"], f"{m['loss']:.4f}", f"{m['flops']:.3g}", f"{m['multiplier']:.2f}x",
                     f"{m['low']:.2f}-{m['high']:.2f}", f"{m['wall_ratio']:.2f}x",
                     "extrapolated beyond the dense ladder" if m["extrapolated"] else "")
    console.print(mult)


def register(app: typer.Typer, cls: Any = None) -> None:
    """Add the lab commands to the main CLI (`cls`: the command class)."""
    cls = cls or aliased()
    app.command("train", cls=cls)(train_cmd)
    app.command("sweep", cls=cls)(sweep_cmd)


def inference_table(rows: list[dict], inference_tokens: float):
    """Kept for callers of the old place; the table lives in `beyondscale.cli.views`."""
    from beyondscale.cli.views import inference_table as table

    return table(rows, inference_tokens)
