"""The `beyondscale` command line: thin typer wrappers over `beyondscale.api`.

User mistakes (`UserError`) print one line on stderr and exit 2; `--json` prints only a JSON
document on stdout so scripts can parse it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from beyondscale import api
from beyondscale.bias.cli import bias_app
from beyondscale.errors import UserError
from beyondscale.executors import cli as xcli
from beyondscale.interpret.cli import explain_app
from beyondscale.lab.curate_cli import register as register_curate
from beyondscale.lab.train_cli import register as register_lab

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure what language-model scale really buys.")
results_app = typer.Typer(no_args_is_help=True, help="List, show and export stored runs.")
app.add_typer(results_app, name="results")
app.add_typer(explain_app, name="explain")
app.add_typer(bias_app, name="bias")
# Piped output (CI logs, README pastes) gets room for the wide tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)

StoreOpt = Annotated[str, typer.Option("--store", help="Results database (SQLite).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only a JSON document on stdout.")]
LogOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]


def _setup_logging(level: str) -> None:
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise UserError(f"--log-level {level}: expected debug, info, warning or error")
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if level.upper() != "DEBUG":
        for noisy in ("transformers", "datasets", "urllib3", "filelock", "httpx", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        try:
            import transformers

            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
            import huggingface_hub

            huggingface_hub.utils.logging.set_verbosity_error()
        except Exception:  # noqa: BLE001 - cosmetics only
            pass


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    return str(value)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def print_eval_table(result: api.EvalResult) -> None:
    table = Table(title=f"run {result.run_id}", title_justify="left")
    for col in ("Model", "Task", "Metric", "Value", "", "Stderr"):
        table.add_column(col, justify="right" if col in ("Value", "Stderr") else "left")
    for pair in result.results:
        names = [m for m in pair.metrics if not m.endswith("_stderr")]
        for i, name in enumerate(names):
            table.add_row(pair.model if i == 0 else "", pair.task if i == 0 else "", name,
                          _fmt(pair.metrics[name]), "±", _fmt(pair.metrics.get(f"{name}_stderr")))
    out.print(table)
    eff = Table(title="cost of the answers", title_justify="left")
    for col in ("Model", "Task", "Items", "Seconds", "Tokens/s", "ms/item", "Peak MB", "J/token", "gCO2e/1k tok",
                "$/1M tok", "$/correct", "MFU", "Energy source"):
        eff.add_column(col, justify="left" if col in ("Model", "Task", "Energy source") else "right")
    for pair in result.results:
        e = pair.efficiency
        est = " (est.)" if str(e.get("energy_source", "")).startswith("estimate") else ""
        peak = e.get("peak_memory_bytes")
        eff.add_row(
            pair.model, pair.task, str(pair.n_items), _fmt(pair.seconds, 1), _fmt(e.get("tokens_per_s"), 1),
            _fmt(e.get("ms_per_item", e.get("latency_ms_per_item")), 1), _fmt(peak / 2**20 if peak else None, 0),
            _fmt(e.get("joules_per_token")) + est, _fmt(e.get("gco2e_per_1k_tokens")) + est,
            _fmt(e.get("usd_per_1m_tokens")), _fmt(e.get("usd_per_correct")), _fmt(e.get("mfu")),
            str(e.get("energy_source", "—")),
        )
    out.print(eff)


@app.command("eval")
def eval_cmd(
    model: Annotated[list[str], typer.Option("--model", "-m", help="Hub id, HF folder, .gguf file; NAME=SPEC names it.")],
    tasks: Annotated[list[str], typer.Option("--tasks", "-t", help="Comma-separated built-in names or YAML paths.")],
    store: StoreOpt = api.DEFAULT_STORE,
    limit: Annotated[int | None, typer.Option(help="First N documents of each task.")] = None,
    seed: Annotated[int, typer.Option(help="Few-shot sampling and bootstrap seed.")] = 1234,
    batch_size: Annotated[str, typer.Option(help="'auto' or an integer.")] = "auto",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (fp32 on CPU), float32, bfloat16, float16.")] = "auto",
    num_fewshot: Annotated[int | None, typer.Option(help="Override the tasks' num_fewshot.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Context window (default: the model's).")] = None,
    family: Annotated[str | None, typer.Option(help="Tag the models with a family name.")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow model repositories to run their own code.")] = False,
    quantize: Annotated[str, typer.Option(help="int8, int4 or none: evaluate a quantised variant (its own model).")] = "none",
    cpu_watts: Annotated[float | None, typer.Option(help="CPU package power for the energy estimate.")] = None,
    region: Annotated[str | None, typer.Option(help="ISO country/region code for grid carbon intensity.")] = None,
    grid_gco2_per_kwh: Annotated[float | None, typer.Option(help="Grid carbon intensity (overrides --region).")] = None,
    pue: Annotated[float | None, typer.Option(help="Power usage effectiveness of the site (default 1.0, labelled a default).")] = None,
    usd_per_hour: Annotated[float | None, typer.Option(help="Price of the machine per hour.")] = None,
    executor: xcli.ExecutorOpt = "local", ray_address: xcli.RayAddressOpt = None, max_retries: xcli.MaxRetriesOpt = 2,
    ray_cpus: xcli.RayCpusOpt = 1.0, ray_gpus: xcli.RayGpusOpt = None, ray_memory_gb: xcli.RayMemoryOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Evaluate models on tasks; every (model, task) is scored, metered and stored (resumable)."""
    _setup_logging(log_level)
    if batch_size != "auto" and not (batch_size.isdigit() and int(batch_size) > 0):
        raise UserError(f"--batch-size {batch_size}: expected 'auto' or a positive integer")
    settings = api.EvalSettings(
        limit=limit, seed=seed, batch_size=batch_size if batch_size == "auto" else int(batch_size), device=device,
        dtype=dtype, num_fewshot=num_fewshot, max_length=max_length, family=family,
        trust_remote_code=trust_remote_code, cpu_watts=cpu_watts, region=region,
        grid_gco2_per_kwh=grid_gco2_per_kwh, pue=pue, usd_per_hour=usd_per_hour, quantize=quantize,
    )
    result = api.evaluate(model, _split(tasks), store=store, settings=settings, show_progress=not json_out,
                          executor=xcli.make_executor(executor, ray_address, max_retries, ray_cpus, ray_gpus,
                                                      ray_memory_gb))
    if json_out:
        print(json.dumps(result.to_json(), default=str))
    else:
        print_eval_table(result)
        out.print(f"stored in {store} as run {result.run_id}")
    status = xcli.print_summary(err if json_out else out, result.succeeded, result.skipped, result.failed,
                                f"beyondscale results logs {result.run_id} --store {store}")
    if status:
        sys.exit(status)


@results_app.command("list")
def results_list(store: StoreOpt = api.DEFAULT_STORE, json_out: JsonOpt = False) -> None:
    """List the runs in the store."""
    runs = api.list_runs(store)
    if json_out:
        print(runs.to_json(orient="records"))
        return
    table = Table()
    for col in runs.columns:
        table.add_column(col)
    for row in runs.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    out.print(table)


@results_app.command("show")
def results_show(run: str = typer.Argument("latest"), store: StoreOpt = api.DEFAULT_STORE,
                 json_out: JsonOpt = False) -> None:
    """Show a run's scores (RUN or 'latest')."""
    table = api.show_run(run, store)
    if json_out:
        print(table.to_json(orient="records"))
        return
    rich_table = Table()
    cols = ["model", "task", "metric", "value", "stderr", "n_items", "params_total", "tokens_per_s",
            "joules_per_token", "energy_source"]
    for col in cols:
        rich_table.add_column(col)
    for row in table[cols].itertuples(index=False):
        rich_table.add_row(*(_fmt(v) for v in row))
    out.print(rich_table)


@results_app.command("export")
def results_export(
    run: str = typer.Argument("latest"),
    store: StoreOpt = api.DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    out_path: Annotated[str | None, typer.Option("--out", help="Output file (default results-RUN.FORMAT).")] = None,
) -> None:
    """Export a run as CSV or JSON (scores, model sizes, efficiency with sources)."""
    path = api.export_run(run, out_path or f"results-{run}.{fmt}", fmt, store)
    out.print(f"wrote {path}")


def _constraints(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


@app.command("analyze")
def analyze_cmd(
    store: StoreOpt = api.DEFAULT_STORE,
    family: Annotated[str | None, typer.Option(help="Only models tagged with this family.")] = None,
    models: Annotated[list[str] | None, typer.Option("--models", help="Only these models (names or keys).")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only these tasks.")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Only these metrics.")] = None,
    min_gain_per_doubling: Annotated[float | None, typer.Option(help="Knee threshold per doubling.")] = None,
    min_score: Annotated[float | None, typer.Option(help="Constraint: minimum primary score.")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="Constraint: ms/item (batch time).")] = None,
    max_memory_gb: Annotated[float | None, typer.Option(help="Constraint: peak memory.")] = None,
    max_joules_per_token: Annotated[float | None, typer.Option(help="Constraint: energy per token.")] = None,
    max_usd_per_1m_tokens: Annotated[float | None, typer.Option(help="Constraint: cost per 1M tokens.")] = None,
    primary: Annotated[str | None, typer.Option("--primary", help="Task that decides the recommendation when no model dominates.")] = None,
    seed: int = 0,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Returns of scale: curves, fits, marginal gains, paired tests, Pareto and a recommendation."""
    _setup_logging(log_level)
    constraints = _constraints(min_score=min_score, max_latency_ms=max_latency_ms, max_memory_gb=max_memory_gb,
                               max_joules_per_token=max_joules_per_token,
                               max_usd_per_1m_tokens=max_usd_per_1m_tokens)
    result, _ = api.analyze(store, models=_split(models or []) or None, family=family,
                            tasks=_split(task or []) or None, metrics=_split(metric or []) or None,
                            min_gain_per_doubling=min_gain_per_doubling, constraints=constraints, seed=seed,
                            primary=primary)
    if json_out:
        print(json.dumps(result.to_json(), default=str))
        return
    print_analysis(result)


def print_analysis(result: Any, brief: bool = False) -> None:
    """The verdict, then the paired tests (and, unless `brief`, marginal gains and Pareto frontiers)."""
    from beyondscale.report.tables import paired_for_terminal

    out.rule("verdict")
    for line in result.verdict:
        out.print(f"• {line}", highlight=False)
    if result.recommendation:
        out.print(f"recommendation: {result.recommendation.get('model')} — {result.recommendation.get('reason')}",
                  highlight=False)
    tables = (
        ("paired", ["task", "metric", "model_a", "model_b", "n_items", "effect", "ci_low", "ci_high", "p", "p_holm",
                    "better", "flag"]),
        ("marginal", ["task", "metric", "axis", "from_model", "to_model", "gain", "gain_per_doubling", "source"]),
        ("pareto", ["task", "metric", "cost_axis", "model", "quality", "cost", "on_frontier"]),
    )
    for name, cols in tables[:1] if brief else tables:
        frame = getattr(result, name)
        if name == "paired" and not frame.empty:
            frame = paired_for_terminal(frame)  # p and Holm p worded as the verdict prints them
        if frame.empty:
            continue
        table = Table(title=name, title_justify="left")
        present = [c for c in cols if c in frame.columns]
        for col in present:
            table.add_column(col)
        for row in frame[present].head(40).itertuples(index=False):
            table.add_row(*(_fmt(v) for v in row))
        out.print(table)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)


@app.command("report")
def report_cmd(
    out_path: Annotated[str, typer.Option("--out", help="report.html, report.md or report.json")] = "report.html",
    store: StoreOpt = api.DEFAULT_STORE,
    fmt: Annotated[str | None, typer.Option("--format", help="html, md or json (default: from --out).")] = None,
    family: Annotated[str | None, typer.Option(help="Only models tagged with this family.")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only these tasks.")] = None,
    primary: Annotated[str | None, typer.Option("--primary", help="Task that decides the recommendation when no model dominates.")] = None,
    title: str = "beyondscale report",
    inference_tokens: Annotated[float | None, typer.Option(
        help="Tokens a trained ladder's model will serve (its inference-aware optimum; default: an assumed "
             "100x the best rung's training tokens).")] = None,
    log_level: LogOpt = "warning",
) -> None:
    """Write the self-contained HTML report (or Markdown / JSON)."""
    _setup_logging(log_level)
    path = api.report(out_path, store=store, fmt=fmt, title=title, family=family, tasks=_split(task or []) or None,
                      primary=primary, inference_tokens=inference_tokens)
    out.print(f"wrote {path.resolve()}")


@app.command("fit")
def fit_cmd(
    data: Annotated[str, typer.Option("--data", help="CSV with params, tokens (optional), loss or score.")],
    exclude_worst: Annotated[int, typer.Option(help="Drop the K highest-loss points (Epoch AI).")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    seed: int = 0,
    inference_tokens: Annotated[float | None, typer.Option(
        help="Tokens the model will serve: adds the inference-aware optimum (Sardana et al. 2024).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit a saturating power law (or L(N, D)) on your own points, with bootstrap intervals."""
    if n_boot < 0 or exclude_worst < 0:
        raise UserError("--n-boot and --exclude-worst must not be negative")
    result = api.fit(data, exclude_worst=exclude_worst, n_boot=n_boot, seed=seed)
    doc = result.to_json()
    budgets = [1e18, 1e20, 1e22, 1e24]
    optimal = []
    if doc.get("B") is not None:
        n_opt, d_opt = result.compute_optimal(budgets)
        optimal = [{"C": c, "N_opt": float(n), "D_opt": float(d)} for c, n, d in zip(budgets, n_opt, d_opt,
                                                                                   strict=True)]
        doc["compute_optimal"] = optimal
        if inference_tokens is not None:
            from beyondscale.analysis.inference_optimal import budget_table

            fitted = {k: doc[k] for k in ("E", "A", "alpha", "B", "beta")}
            doc["inference_optimal"] = budget_table(budgets, inference_tokens, fitted)
    elif inference_tokens is not None:
        raise UserError("--inference-tokens: needs a CSV with a tokens column (an L(N, D) fit)")
    if json_out:
        print(json.dumps(doc, default=str))
        return
    table = Table(title=f"fit on {doc.get('n_points')} points", title_justify="left")
    for col in ("constant", "value", "95% CI"):
        table.add_column(col)
    for name, value in doc.items():
        if name in ("ci", "n_points") or not isinstance(value, int | float):
            continue
        lo, hi = (doc.get("ci") or {}).get(name, (None, None))
        table.add_row(name, _fmt(value), f"[{_fmt(lo)}, {_fmt(hi)}]")
    out.print(table)
    if optimal:
        alloc = Table(title="compute-optimal allocation (C = 6 N D)", title_justify="left")
        for col in ("C (FLOPs)", "N_opt (params)", "D_opt (tokens)", "tokens per param"):
            alloc.add_column(col, justify="right")
        for row in optimal:
            alloc.add_row(f"{row['C']:.0e}", f"{row['N_opt']:.3g}", f"{row['D_opt']:.3g}",
                          f"{row['D_opt'] / row['N_opt']:.1f}")
        out.print(alloc)
    if doc.get("inference_optimal"):
        from beyondscale.lab.train_cli import inference_table

        out.print(inference_table(doc["inference_optimal"], inference_tokens))


@app.command("bench")
def bench_cmd(
    model: Annotated[list[str], typer.Option("--model", "-m", help="Hub id, HF folder, .gguf file; NAME=SPEC.")],
    prompt_tokens: Annotated[str, typer.Option(help="Comma-separated prompt lengths.")] = "128,512",
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per repetition.")] = 128,
    repetitions: Annotated[int, typer.Option(help="Measured repetitions (median and spread).")] = 5,
    warmup: Annotated[int, typer.Option(help="Unmeasured warm-up repetitions.")] = 1,
    store: StoreOpt = api.DEFAULT_STORE,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (fp32 on CPU), float32, bfloat16, float16.")] = "auto",
    cpu_watts: Annotated[float | None, typer.Option(help="CPU package power for the energy estimate.")] = None,
    executor: xcli.ExecutorOpt = "local", ray_address: xcli.RayAddressOpt = None, max_retries: xcli.MaxRetriesOpt = 2,
    ray_cpus: xcli.RayCpusOpt = 1.0, ray_gpus: xcli.RayGpusOpt = None, ray_memory_gb: xcli.RayMemoryOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Generation speed: time to first token, prefill/decode tokens/s, latency p50/p95, memory, energy."""
    _setup_logging(log_level)
    try:
        lengths = [int(x) for x in prompt_tokens.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--prompt-tokens {prompt_tokens}: expected comma-separated integers") from None
    settings = api.EvalSettings(device=device, dtype=dtype, cpu_watts=cpu_watts)
    frame = api.bench(model, prompt_tokens=lengths, new_tokens=new_tokens, repetitions=repetitions, warmup=warmup,
                      store=store, settings=settings, executor=xcli.make_executor(
                          executor, ray_address, max_retries, ray_cpus, ray_gpus, ray_memory_gb))
    if json_out:
        print(frame.to_json(orient="records"))
        return
    table = Table(title="generation benchmark (median ± std over repetitions)", title_justify="left")
    for col in ("Model", "Prompt", "New", "TTFT ms", "Prefill tok/s", "Decode tok/s", "Token ms p50", "p95",
                "Peak MB", "Prefill J", "J/generated token (decode)", "Energy source"):
        table.add_column(col, justify="left" if col in ("Model", "Energy source") else "right")

    def spread(d: Any, digits: int = 1) -> str:
        return "—" if not d else f"{d['median']:.{digits}f} ± {d['std']:.{digits}f}"

    for r in frame.to_dict(orient="records"):
        peak = r.get("peak_gpu_bytes") or r.get("peak_rss_bytes")
        est = " (est.)" if r.get("energy_estimated") else ""
        table.add_row(r["model"], str(r["prompt_tokens"]), str(r["new_tokens"]), spread(r["ttft_ms"]),
                      spread(r["prefill_tokens_per_s"]), spread(r["decode_tokens_per_s"]),
                      _fmt(r["token_latency_ms_p50"], 1), _fmt(r["token_latency_ms_p95"], 1),
                      _fmt(peak / 2**20 if peak else None, 0), spread(r.get("prefill_energy_j"), 3) + est,
                      spread(r["energy_j_per_generated_token"], 3) + est, str(r["energy_source"]))
    out.print(table)


@app.command("quickstart")
def quickstart_cmd(
    store: StoreOpt = api.DEFAULT_STORE,
    out_path: Annotated[str, typer.Option("--out", help="Where to write the HTML report.")] = "report.html",
    budget_minutes: Annotated[float | None, typer.Option(help="Scale the study to this many minutes "
                                                       "(default 10: `make run` on 2 CPU cores).")] = None,
    corpus: Annotated[str | None, typer.Option(help="Your JSONL corpus instead of the standard library.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Set the earlier study folder aside and retrain.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    batch_size: Annotated[str, typer.Option(help="'auto' or an integer.")] = "auto",
    quantize: Annotated[str, typer.Option(help="int8, int4, both (int8,int4) or none: add the real models' "
                                          "quantised variants (each its own model).")] = "none",
    log_level: LogOpt = "warning",
) -> None:
    """The study (`make run`): a trained ladder, an MoE, raw vs curated data and two real models, one report."""
    import time

    _setup_logging(log_level)
    start = time.perf_counter()
    settings = api.EvalSettings(device=device, batch_size=batch_size if batch_size == "auto" else int(batch_size),
                                quantize=quantize)
    result = api.quickstart(store=store, out=out_path, budget_minutes=budget_minutes, corpus=corpus, fresh=fresh,
                            settings=settings, say=lambda line: err.print(line, highlight=False, markup=False))
    print_analysis(result.analysis, brief=True)
    out.rule("timings")
    for stage, seconds in result.stage_seconds.items():
        out.print(f"{stage:>14}: {seconds:7.1f} s")
    out.print(f"{'total':>14}: {time.perf_counter() - start:7.1f} s")
    out.print(f"report: {result.report.resolve()}")


@app.command("tasks")
def tasks_cmd() -> None:
    """List the built-in tasks."""
    from beyondscale.tasks import list_builtin_tasks

    for name in list_builtin_tasks():
        out.print(name)


register_curate(app)
register_lab(app)
results_app.command("logs")(xcli.logs_cmd)


def main() -> None:
    """Entry point: run the app, turning user mistakes into one line and exit status 2."""
    try:
        app(standalone_mode=False)
    except UserError as error:
        err.print(f"error: {error}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted: finished batches are stored; run the same command again to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(error, click.exceptions.ClickException):
            err.print(f"error: {error.format_message()}", highlight=False, markup=False)
            sys.exit(2)
        if isinstance(error, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
