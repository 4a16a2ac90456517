"""The `beyondscale` command line: each command parses its flags into one settings object, calls one public
function and prints what it returns (`cli_views`); `--json` prints only a JSON document on stdout.

The contract, for every command: a usage error (missing, unknown or malformed option, unknown command) or a
`UserError` prints one line on stderr naming the flag or file, exit status 2, no traceback (`main`).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from beyondscale import api, track
from beyondscale._quiet_deps import setup_logging
from beyondscale.cli import executors as xcli
from beyondscale.cli.bias import bias_app
from beyondscale.cli.curate import register as register_curate
from beyondscale.cli.errors import run_app
from beyondscale.cli.explain import explain_app
from beyondscale.cli.flags import (
    ALIASES,
    DEFAULT_STORE,
    LM_EVAL_ALIASES,
    BatchSizeOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    LimitOpt,
    LogOpt,
    ModelFilterOpt,
    ModelsOpt,
    StoreOpt,
    TaskFilterOpt,
    TasksOpt,
    aliased,
    from_flags,
    lm_eval_model,
    split_list,
    split_models,
)
from beyondscale.cli.flags import batch_size as batch_size_value
from beyondscale.cli.lab import register as register_lab
from beyondscale.cli.tracking import TrackerArgsOpt, TrackerOpt, trackers
from beyondscale.cli.views import (
    err,
    out,
    print_analysis,
    print_bench,
    print_eval_table,
    print_fit,
    print_frame,
)
from beyondscale.errors import UserError
from beyondscale.evaluator.harness import check_output_path
from beyondscale.executors.choice import ExecutorSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure what language-model scale really buys.")
results_app = typer.Typer(no_args_is_help=True, help="List, show and export stored runs.")
app.add_typer(results_app, name="results")
app.add_typer(explain_app, name="explain")
app.add_typer(bias_app, name="bias")
command = aliased()  # every command reads the old spellings --model / --task / --metric as hidden aliases


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("beyondscale")
        except PackageNotFoundError:  # a source checkout that was never installed
            from beyondscale import __version__ as number
        print(f"beyondscale {number}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                help="Print the version and exit.")] = False) -> None:
    """Measure what language-model scale really buys."""


def _json(doc: Any) -> None:
    print(json.dumps(doc, default=str))


@app.command("eval", cls=aliased({**ALIASES, **LM_EVAL_ALIASES}))
def eval_cmd(
    models: ModelsOpt,
    tasks: TasksOpt,
    store: StoreOpt = DEFAULT_STORE,
    model_args: Annotated[str | None, typer.Option(
        "--model-args", "-a", help="With --model hf: pretrained=X,revision=R,dtype=D,gguf_file=F (as lm-eval).")] = None,
    include_path: Annotated[str | None, typer.Option(help="A folder of lm-eval task YAML files.")] = None,
    limit: LimitOpt = None,
    seed: Annotated[int, typer.Option(help="Few-shot sampling and bootstrap seed.")] = 1234,
    batch_size: Annotated[Any, typer.Option("--batch-size", "-b", parser=batch_size_value,
                                            help="'auto' or a positive integer.")] = "auto",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    num_fewshot: Annotated[int | None, typer.Option("--num-fewshot", "-f",
                                                    help="Override the tasks' num_fewshot.")] = None,
    apply_chat_template: Annotated[bool, typer.Option(help="lm-eval tasks: prompts through the chat template.")] = False,
    system_instruction: Annotated[str | None, typer.Option(help="lm-eval tasks: a system prompt.")] = None,
    gen_kwargs: Annotated[str | None, typer.Option(help="lm-eval tasks: generation options, e.g. temperature=0.")] = None,
    output_path: Annotated[str | None, typer.Option(
        "--output-path", "-o", help="Also write lm-eval's own results JSON (and samples) into this folder.")] = None,
    log_samples: Annotated[bool, typer.Option(help="With --output-path: lm-eval's samples_TASK_*.jsonl too.")] = False,
    allow_task_code: Annotated[bool, typer.Option(help="Run `!function` code of task files outside lm-eval.")] = False,
    bootstrap_iters: Annotated[int, typer.Option(help="lm-eval tasks: bootstrap iterations for stderr.")] = 100000,
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
    tracker: TrackerOpt = None,
    tracker_args: TrackerArgsOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Evaluate models on tasks (built-in, or any task, group or tag lm-eval knows); every (model, task) is
    scored, metered and stored (resumable)."""
    flags = dict(locals())
    setup_logging(log_level)
    if output_path:
        check_output_path(output_path)
    model_specs, from_model_args = lm_eval_model(split_models(models), model_args)
    settings = from_flags(api.EvalSettings, {**flags, **from_model_args})
    with trackers(tracker, tracker_args) as opened:
        result = api.evaluate(model_specs, split_list(tasks), store=store,
                              settings=settings, show_progress=not json_out,
                              executor=from_flags(ExecutorSettings, flags).build())
        track.log_evaluation(opened, result)
    if json_out:
        _json(result.to_json())
    else:
        print_eval_table(result)
        out.print(f"stored in {store} as run {result.run_id}")
    status = xcli.print_summary(err if json_out else out, result.succeeded, result.skipped, result.failed,
                                f"beyondscale results logs {result.run_id} --store {store}")
    if status:
        sys.exit(status)


@results_app.command("list", cls=command)
def results_list(store: StoreOpt = DEFAULT_STORE, json_out: JsonOpt = False, log_level: LogOpt = "warning") -> None:
    """List the runs in the store."""
    setup_logging(log_level)
    runs = api.list_runs(store)
    if json_out:
        print(runs.to_json(orient="records"))
    else:
        print_frame(runs)


SHOW_COLUMNS = ["model", "task", "metric", "value", "stderr", "n_items", "params_total", "tokens_per_s",
                "joules_per_token", "energy_source"]


@results_app.command("show", cls=command)
def results_show(run: Annotated[str, typer.Argument(help="Run id, or 'latest'.")] = "latest",
                 store: StoreOpt = DEFAULT_STORE, json_out: JsonOpt = False, log_level: LogOpt = "warning") -> None:
    """Show a run's scores (RUN or 'latest')."""
    setup_logging(log_level)
    table = api.show_run(run, store)
    if json_out:
        print(table.to_json(orient="records"))
    else:
        print_frame(table, SHOW_COLUMNS)


@results_app.command("export", cls=command)
def results_export(
    run: Annotated[str, typer.Argument(help="Run id, or 'latest' (not with --items).")] = "latest",
    store: StoreOpt = DEFAULT_STORE,
    items: Annotated[bool, typer.Option("--items/--no-items", help="One row per (model, task, document) of the "
                                        "store's current results, across runs (docs/per_item_export.md).")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or json; with --items parquet (default), csv "
                                            "or jsonl.")] = None,
    out_path: Annotated[str | None, typer.Option("--out", help="Output file (default results-RUN.FORMAT, or "
                                                 "items.FORMAT).")] = None,
    models: Annotated[list[str] | None, typer.Option("--models", "-m", help="With --items: only these models "
                                                     "(names or keys).")] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", "-t", help="With --items: only these tasks.")] = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Export a run as CSV or JSON (scores, model sizes, efficiency with sources), or every per-item score."""
    setup_logging(log_level)
    if items:
        fmt = fmt or "parquet"
        path = api.export_items(store, out_path or f"items.{fmt}", fmt, split_list(models) or None,
                                split_list(tasks) or None)
    else:
        if models or tasks:
            raise UserError("--models/--tasks: only with --items (a run's export holds the whole run)")
        fmt = fmt or "csv"
        path = api.export_run(run, out_path or f"results-{run}.{fmt}", fmt, store)
    if json_out:
        _json({"out": str(path)})
    else:
        out.print(f"wrote {path}")


results_app.command("logs", cls=command)(xcli.logs_cmd)

# ---- analyze and report share their filters and constraints -----------------------------------------
FamilyOpt = Annotated[str | None, typer.Option(help="Only models tagged with this family.")]
MetricsOpt = Annotated[list[str] | None, typer.Option("--metrics", help="Only these metrics.")]
PrimaryOpt = Annotated[str | None, typer.Option(
    "--primary", help="Task that decides the recommendation when no model dominates.")]
GainOpt = Annotated[float | None, typer.Option(help="Knee threshold per doubling.")]
MinScoreOpt = Annotated[float | None, typer.Option(help="Constraint: minimum primary score.")]
LatencyOpt = Annotated[float | None, typer.Option(help="Constraint: ms/item (batch time).")]
MemoryOpt = Annotated[float | None, typer.Option(help="Constraint: peak memory.")]
JoulesOpt = Annotated[float | None, typer.Option(help="Constraint: energy per token.")]
CostOpt = Annotated[float | None, typer.Option(help="Constraint: cost per 1M tokens.")]
SeedOpt = Annotated[int, typer.Option(help="Bootstrap seed.")]
CONSTRAINTS = ("min_score", "max_latency_ms", "max_memory_gb", "max_joules_per_token", "max_usd_per_1m_tokens")


def _analysis_options(flags: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `api.analyze` (and `api.report`), from the flags both commands share."""
    return {"models": split_list(flags["models"]) or None, "family": flags["family"],
            "tasks": split_list(flags["tasks"]) or None, "metrics": split_list(flags["metrics"]) or None,
            "min_gain_per_doubling": flags["min_gain_per_doubling"], "seed": flags["seed"],
            "primary": flags["primary"],
            "constraints": {k: flags[k] for k in CONSTRAINTS if flags[k] is not None}}


@app.command("analyze", cls=command)
def analyze_cmd(
    store: StoreOpt = DEFAULT_STORE, family: FamilyOpt = None, models: ModelFilterOpt = None,
    tasks: TaskFilterOpt = None, metrics: MetricsOpt = None, min_gain_per_doubling: GainOpt = None,
    min_score: MinScoreOpt = None, max_latency_ms: LatencyOpt = None, max_memory_gb: MemoryOpt = None,
    max_joules_per_token: JoulesOpt = None, max_usd_per_1m_tokens: CostOpt = None, primary: PrimaryOpt = None,
    seed: SeedOpt = 0, json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Returns of scale: curves, fits, marginal gains, paired tests, Pareto and a recommendation."""
    flags = dict(locals())
    setup_logging(log_level)
    result, _ = api.analyze(store, **_analysis_options(flags))
    if json_out:
        _json(result.to_json())
    else:
        print_analysis(result)


@app.command("report", cls=command)
def report_cmd(
    out_path: Annotated[str, typer.Option("--out", help="report.html, report.md or report.json")] = "report.html",
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[str | None, typer.Option("--format", help="html, md or json (default: from --out).")] = None,
    title: Annotated[str, typer.Option(help="The report's title.")] = "beyondscale report",
    inference_tokens: Annotated[float | None, typer.Option(
        help="Tokens a trained ladder's model will serve (its inference-aware optimum; default: an assumed "
             "100x the best rung's training tokens).")] = None,
    family: FamilyOpt = None, models: ModelFilterOpt = None,
    tasks: TaskFilterOpt = None, metrics: MetricsOpt = None, min_gain_per_doubling: GainOpt = None,
    min_score: MinScoreOpt = None, max_latency_ms: LatencyOpt = None, max_memory_gb: MemoryOpt = None,
    max_joules_per_token: JoulesOpt = None, max_usd_per_1m_tokens: CostOpt = None, primary: PrimaryOpt = None,
    seed: SeedOpt = 0, json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Write the self-contained HTML report (or Markdown / JSON), with `analyze`'s filters and constraints."""
    flags = dict(locals())
    setup_logging(log_level)
    path = api.report(out_path, store=store, fmt=fmt, title=title, inference_tokens=inference_tokens,
                      **_analysis_options(flags))
    if json_out:
        _json({"out": str(path.resolve())})
    else:
        out.print(f"wrote {path.resolve()}")


@app.command("fit", cls=command)
def fit_cmd(
    data: Annotated[str, typer.Option("--data", help="CSV: params, tokens (optional) and a column named for its "
                                      "metric (loss, perplexity, bits_per_byte, accuracy or score).")],
    metric: Annotated[str | None, typer.Option("--column", help="Which metric column to fit (loss, perplexity, "
                                               "bits_per_byte, accuracy or score; default: the one present).")] = None,
    chance: Annotated[float | None, typer.Option(help="An accuracy's floor when the choices are known "
                                                 "(1/choices).")] = None,
    min_gain: Annotated[float | None, typer.Option(help="Gain per doubling worth paying for (default: one "
                                                   "accuracy point, 0.02 for losses).")] = None,
    exclude_worst: Annotated[int, typer.Option(help="Drop the K worst points first (Epoch AI).")] = 0,
    inference_tokens: Annotated[float | None, typer.Option(
        help="Tokens the model will serve: adds the inference-aware optimum (Sardana et al. 2024).")] = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Fit a returns law on your own points: floor or asymptote, intervals, gains per doubling, knee, backtest."""
    flags = dict(locals())
    from beyondscale.analysis.fit_summary import FitSettings

    setup_logging(log_level)
    doc = api.fit(from_flags(FitSettings, flags))
    if json_out:
        _json(doc)
    else:
        print_fit(doc)


def _prompt_lengths(value: Any) -> list[int]:
    if isinstance(value, list):  # the default, already parsed
        return value
    try:
        lengths = [int(x) for x in str(value).split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not lengths:
        raise typer.BadParameter("expected at least one prompt length")
    return lengths


@app.command("bench", cls=command)
def bench_cmd(
    models: ModelsOpt,
    prompt_tokens: Annotated[Any, typer.Option(parser=_prompt_lengths, help="Comma-separated prompt lengths.")] = "128,512",
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per repetition.")] = 128,
    repetitions: Annotated[int, typer.Option(help="Measured repetitions (median and spread).")] = 5,
    warmup: Annotated[int, typer.Option(help="Unmeasured warm-up repetitions.")] = 1,
    store: StoreOpt = DEFAULT_STORE,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    cpu_watts: Annotated[float | None, typer.Option(help="CPU package power for the energy estimate.")] = None,
    executor: xcli.ExecutorOpt = "local", ray_address: xcli.RayAddressOpt = None, max_retries: xcli.MaxRetriesOpt = 2,
    ray_cpus: xcli.RayCpusOpt = 1.0, ray_gpus: xcli.RayGpusOpt = None, ray_memory_gb: xcli.RayMemoryOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """Generation speed: time to first token, prefill/decode tokens/s, latency p50/p95, memory, energy."""
    flags = dict(locals())
    setup_logging(log_level)
    frame = api.bench(split_models(models), prompt_tokens=_prompt_lengths(prompt_tokens), new_tokens=new_tokens,
                      repetitions=repetitions, warmup=warmup, store=store,
                      settings=from_flags(api.EvalSettings, flags),
                      executor=from_flags(ExecutorSettings, flags).build())
    if json_out:
        print(frame.to_json(orient="records"))
    else:
        print_bench(frame)


@app.command("quickstart", cls=command)
def quickstart_cmd(
    store: StoreOpt = DEFAULT_STORE,
    out_path: Annotated[str, typer.Option("--out", help="Where to write the HTML report.")] = "report.html",
    budget_minutes: Annotated[float | None, typer.Option(help="Spend this many minutes (at least 10) on rungs, "
                                                       "then items, then tokens, from costs measured at the start "
                                                       "(without it: the fixed default study).")] = None,
    corpus: Annotated[str | None, typer.Option(help="Your JSONL corpus instead of the standard library.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh/--no-fresh", help="Set the earlier study folder aside and "
                                        "retrain.")] = False,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = "auto",
    quantize: Annotated[str, typer.Option(help="int8, int4, both (int8,int4) or none: add the real models' "
                                          "quantised variants (each its own model).")] = "none",
    tracker: TrackerOpt = None,
    tracker_args: TrackerArgsOpt = None,
    json_out: JsonOpt = False,
    log_level: LogOpt = "warning",
) -> None:
    """The study (`make run`): a trained ladder, an MoE, raw vs curated data and two real models, one report."""
    flags = dict(locals())
    setup_logging(log_level)
    start = time.perf_counter()
    with trackers(tracker, tracker_args) as opened:
        result = api.quickstart(store=store, out=out_path, budget_minutes=budget_minutes, corpus=corpus,
                                fresh=fresh, settings=from_flags(api.EvalSettings, flags),
                                say=lambda line: err.print(line, highlight=False, markup=False))
        log_study(opened, result, store)
    if json_out:
        _json({"report": str(result.report.resolve()), "run_id": result.run_id, "verdict": result.verdict,
               "stage_seconds": result.stage_seconds})
        return
    print_analysis(result.analysis, brief=True)
    out.rule("timings")
    for stage, seconds in result.stage_seconds.items():
        out.print(f"{stage:>14}: {seconds:7.1f} s")
    out.print(f"{'total':>14}: {time.perf_counter() - start:7.1f} s")
    out.print(f"report: {result.report.resolve()}")


def log_study(opened: list, result: api.QuickstartResult, store: str) -> None:
    """The study in the trackers: each trained model's run with its loss curve, every model's scores, the
    report and the store, grouped by the study's run ids."""
    group = f"study-{result.run_id.split(',')[0]}"
    for name, record in result.training_records.items():
        track.log_training(opened, record, group=group, name=name)
    track.log_evaluation(opened, track.stored_result(store, group))
    track.log_report(opened, result.report, store, group=group)


@app.command("tasks", cls=aliased({**ALIASES, "--include_path": "--include-path"}))
def tasks_cmd(
    pattern: Annotated[str | None, typer.Argument(help="A glob (mmlu_*) or a part of the name.")] = None,
    include_path: Annotated[str | None, typer.Option(help="Also a folder of lm-eval task YAML files.")] = None,
    json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """List the tasks, groups and tags lm-eval knows."""
    from beyondscale.tasks.harness import list_tasks

    setup_logging(log_level)
    listed = [{"name": t.name, "kind": t.kind, "path": t.path} for t in list_tasks(pattern, include_path=include_path)]
    if json_out:
        _json(listed)
        return
    for row in listed:
        mark = "" if row["kind"] == "task" else f"  ({row['kind']})"
        out.print(f"{row['name']}{mark}", highlight=False, markup=False)


IMPORT_COLUMNS = ["model", "task", "n_docs", "per_document", "items_new"]
import_app = typer.Typer(no_args_is_help=True, help="Bring runs made elsewhere into the store.")
app.add_typer(import_app, name="import")


@import_app.command("lm-eval", cls=command)
def import_lm_eval_cmd(
    folder: Annotated[str, typer.Argument(help="An lm-eval --output_path folder (results_*.json, samples_*.jsonl).")],
    store: StoreOpt = DEFAULT_STORE,
    name: Annotated[str | None, typer.Option("--name", help="The model's name here (a folder of one model).")] = None,
    json_out: JsonOpt = False, log_level: LogOpt = "warning",
) -> None:
    """Import lm-eval runs (any backend, any hardware) with their per-document scores, for analyze and report."""
    import pandas as pd

    setup_logging(log_level)
    summary = api.import_lm_eval(folder, store=store, name=name)
    if json_out:
        _json({"store": str(summary.store), "runs_new": summary.runs_new, "models": summary.models,
               "units": summary.units, "items_new": summary.items_new, "notes": summary.notes})
        return
    print_frame(pd.DataFrame(summary.units, columns=IMPORT_COLUMNS), IMPORT_COLUMNS)
    out.print(f"{summary.runs_new} new run(s), {summary.items_new} new document score(s) in {summary.store}")
    for note in summary.notes:
        out.print(f"note: {note}")


register_curate(app, command)
register_lab(app, command)


def main() -> None:
    """Entry point: run the app; usage errors and user mistakes become one line and exit status 2."""
    status = run_app(app)
    if status:
        sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
