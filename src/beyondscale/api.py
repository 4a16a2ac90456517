"""The public Python API. Every CLI command is a thin wrapper over one function here.

Functions return plain data (dataclasses, dicts, pandas DataFrames) so notebooks and scripts can
use them without the CLI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from beyondscale.errors import UserError

if TYPE_CHECKING:
    from beyondscale.executors import Executor

log = logging.getLogger("beyondscale")

DEFAULT_STORE = "beyondscale.db"


@dataclass
class EvalSettings:
    """How to evaluate. Fields that change scores enter the resume keys; the rest do not."""

    limit: int | None = None
    seed: int = 1234
    batch_size: int | str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    num_fewshot: int | None = None
    max_length: int | None = None
    add_bos_token: bool | None = None
    rolling_stride: int | None = None
    trust_remote_code: bool = False
    family: str | None = None
    quantize: str = "none"  # int8 | int4 | none: a quantised variant is a model of its own (key and label)
    # measurement
    cpu_watts: float | None = None
    region: str | None = None
    grid_gco2_per_kwh: float | None = None
    pue: float | None = None  # None: not given; 1.0 is used and labelled a default
    usd_per_hour: float | None = None
    # sharing a store: a (model, task) claim whose heartbeat is older than this is taken over
    claim_timeout_s: float = 60.0

    def score_config(self) -> dict[str, Any]:
        """What changes the scores of a (model, task): part of the task's resume key."""
        return {
            "seed": self.seed,
            "num_fewshot": self.num_fewshot,
            "max_length": self.max_length,
            "add_bos_token": self.add_bos_token,
            "rolling_stride": self.rolling_stride,
        }


@dataclass
class PairResult:
    model: str
    model_key: str
    task: str
    task_key: str
    metrics: dict[str, float | None]
    n_items: int
    seconds: float
    efficiency: dict[str, Any]
    resumed_items: int = 0


@dataclass
class UnitFailure:
    model: str
    task: str
    cause: str
    attempts: int
    user_error: bool


@dataclass
class EvalResult:
    run_id: str
    store: str
    results: list[PairResult] = field(default_factory=list)
    # (model, task) pairs this run computed / found already stored (or computed by another process) / failed
    succeeded: int = 0
    skipped: int = 0
    failed: list[UnitFailure] = field(default_factory=list)

    def raise_failures(self, what: str) -> None:
        """For callers that need every pair (quickstart, sweep): one line naming each failed unit."""
        if self.failed:
            causes = "; ".join(f"{f.model} · {f.task}: {f.cause}" for f in self.failed)
            raise UserError(f"{what}: {len(self.failed)} unit(s) failed ({causes}); logs: beyondscale results "
                            f"logs {self.run_id} --store {self.store}")

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "store": self.store,
            "summary": {"succeeded": self.succeeded, "skipped": self.skipped,
                        "failed": [asdict(f) for f in self.failed]},
            "results": [
                {"model": r.model, "task": r.task, "metrics": r.metrics, "n_items": r.n_items, "seconds": r.seconds,
                 "efficiency": r.efficiency}
                for r in self.results
            ],
        }


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not enabled, transient=False,
    )


def evaluate(
    models: Sequence[str],
    tasks: Sequence[str],
    *,
    store: str | Path = DEFAULT_STORE,
    settings: EvalSettings | None = None,
    show_progress: bool = True,
    command: str = "eval",
    executor: Executor | None = None,
) -> EvalResult:
    """Score and meter every (model, task) pair; everything lands in the store, resumably.

    plan -> executor (default: a local loop) -> the single writer -> score. Items already stored are
    not computed again, and a model is loaded only if some item still needs it.
    """
    from beyondscale import measure
    from beyondscale.executors import LocalExecutor
    from beyondscale.models.load import resolve_device
    from beyondscale.store import Store

    settings = settings or EvalSettings()
    # Validate every input before any model loads: user mistakes fail fast and store nothing.
    _check_inputs(models, tasks, settings)
    costs = measure.CostConfig(
        usd_per_hour=settings.usd_per_hour, region=settings.region, grid_gco2_per_kwh=settings.grid_gco2_per_kwh,
        pue=settings.pue,
    )
    executor = executor or LocalExecutor()
    device = executor.resolve_device(settings.device) if hasattr(executor, "resolve_device") else \
        resolve_device(settings.device)
    refs = _parse_models(models)
    built_tasks = _build_tasks(tasks, settings)
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run(command, {"models": list(models), "tasks": list(tasks), **asdict(settings)}, environment)
    out = EvalResult(run_id, str(store))
    try:
        _evaluate_all(db, out, refs, built_tasks, settings, device, costs, environment.get("environment_key", ""),
                      executor, show_progress)
    except KeyboardInterrupt:
        db.finish_run(run_id, "interrupted")
        raise
    except BaseException:
        db.finish_run(run_id, "failed")
        raise
    db.finish_run(run_id, "failed" if out.failed else "done")
    db.close()
    return out


def _check_inputs(models: Sequence[str], tasks: Sequence[str], settings: EvalSettings) -> None:
    from beyondscale.measure.meter import check_positive

    if not models:
        raise UserError("--model: give at least one model")
    if not tasks:
        raise UserError("--tasks: give at least one task")
    if settings.limit is not None and settings.limit <= 0:
        raise UserError(f"--limit {settings.limit}: must be a positive number of documents")
    if settings.cpu_watts is not None:
        check_positive(settings.cpu_watts, "--cpu-watts")
    from beyondscale.models.quantize import check_method

    check_method(settings.quantize)


def _parse_models(models: Sequence[str]) -> list[Any]:
    from beyondscale.models import parse_model_ref

    return [parse_model_ref(m) for m in models]


@dataclass
class _BuiltTask:
    spec: Any
    spec_hash: str
    built: Any
    job: Any  # work.TaskJob with every item


def _build_tasks(tasks: Sequence[str], settings: EvalSettings) -> list[_BuiltTask]:
    """Load and render every task; the task key covers its spec, data (hashed once) and scoring settings."""
    from beyondscale.tasks import build_task, load_task
    from beyondscale.work import TaskJob

    out = []
    for name in tasks:
        spec = load_task(name)
        if settings.num_fewshot is not None:
            spec = spec.model_copy(update={"num_fewshot": settings.num_fewshot})
        built = build_task(spec, limit=settings.limit, seed=settings.seed)
        if not built.items:
            raise UserError(f"task {spec.name}: no documents to evaluate")
        spec_hash = spec.spec_hash()
        job = TaskJob(_task_key(spec_hash, settings), spec.name, tuple(built.items),
                      tuple(item.key() for item in built.items))
        out.append(_BuiltTask(spec, spec_hash, built, job))
    return out


def _task_key(spec_hash: str, settings: EvalSettings) -> str:
    return _hash({"spec": spec_hash, "score_config": settings.score_config()})


def _model_key(ref: Any, identity: str, settings: EvalSettings, device: str) -> str:
    from beyondscale.models import model_key
    from beyondscale.models.load import resolve_dtype
    from beyondscale.models.quantize import plan_quantization

    plan = plan_quantization(settings.quantize, device)
    return model_key(ref, resolve_dtype(settings.dtype, device), identity=identity,
                     quantization=plan.label if plan else None)


def _model_job(db: Any, ref: Any, settings: EvalSettings, device: str) -> tuple[Any, Any]:
    """The model's job (identity, key, load settings) and label; stored facts get the lab record's fields."""
    from beyondscale.work import LoadSettings, ModelJob, ModelLabel, with_lab_record

    identity = ref.identity()
    key = _model_key(ref, identity, settings, device)
    load = LoadSettings(device=device, dtype=settings.dtype, trust_remote_code=settings.trust_remote_code,
                        batch_size=settings.batch_size, max_length=settings.max_length,
                        add_bos_token=settings.add_bos_token, rolling_stride=settings.rolling_stride,
                        cpu_watts=settings.cpu_watts, quantize=settings.quantize)
    record = ref.lab_record()
    if settings.quantize not in ("none", None):  # a display name of its own (the key already differs)
        ref = replace(ref, name=f"{ref.name}-{settings.quantize}")
    label = ModelLabel(ref.name, settings.family, ref.to_dict(), identity, record)
    if record is not None:
        db.put_training_record(key, record)
    if (facts := db.model_facts(key)) is not None:
        db.put_model(key, label.name, label.family, label.ref, identity, with_lab_record(facts, record))
    return ModelJob(ref, key, identity, load), label


def _evaluate_all(db: Any, out: EvalResult, refs: list[Any], tasks: list[_BuiltTask], settings: EvalSettings,
                  device: str, costs: Any, env_key: str, executor: Executor, show_progress: bool) -> None:
    from beyondscale import measure
    from beyondscale.store.claims import new_owner
    from beyondscale.work import Writer, run_all

    run_id = out.run_id
    jobs, labels = [], {}
    for ref in refs:
        job, label = _model_job(db, ref, settings, device)
        jobs.append(job)
        labels[job.model_key] = label
    for t in tasks:
        db.put_task(t.job.task_key, t.spec.name, t.spec.output_type, t.spec_hash,
                    json.loads(t.spec.model_dump_json()), settings.score_config())
        for job in jobs:
            db.put_run_unit(run_id, job.model_key, t.job.task_key, "running", t.built.info.to_json())
    scorer = _Scorer(db, run_id, jobs, tasks, settings, costs, measure.peak_flops(device))
    with _progress(show_progress) as progress:
        bars = _Bars(db, progress, jobs, [t.job for t in tasks])
        scorer.writer = Writer(db, run_id, env_key, labels, on_batch=bars.advance,
                               on_notice=lambda line: progress.console.print(line, highlight=False, markup=False))
        summary = run_all(db, jobs, [t.job for t in tasks], executor, scorer.writer, owner=new_owner(),
                          timeout_s=settings.claim_timeout_s, on_round=bars.sync, on_done=scorer.score)
    _record_summary(db, out, summary, {k: v.name for k, v in labels.items()}, {t.job.task_key: t.spec.name for t in tasks})
    out.results = [scorer.result(job.model_key, t.job.task_key) for job in jobs for t in tasks
                   if (job.model_key, t.job.task_key) not in summary.failed]


def _record_summary(db: Any, out: EvalResult, summary: Any, models: dict[str, str], tasks: dict[str, str]) -> None:
    """Failed pairs are marked in run_units and listed once each with their cause; counts for the rest."""
    for (model_key, task_key), failure in summary.failed.items():
        db.put_run_unit(out.run_id, model_key, task_key, "failed")
        out.failed.append(UnitFailure(models[model_key], tasks[task_key], failure.cause, failure.attempts,
                                      failure.user_error))
    for model_key, failure in summary.failed_models.items():
        if not any(m == model_key for m, _ in summary.failed):
            out.failed.append(UnitFailure(models[model_key], "(facts)", failure.cause, failure.attempts,
                                          failure.user_error))
    out.succeeded, out.skipped = len(summary.succeeded), len(summary.skipped)


class _Scorer:
    """Scores each (model, task) once its items are all stored: as soon as its unit is done here, or at the
    end for units another process computed. Scoring needs no model."""

    def __init__(self, db: Any, run_id: str, jobs: list[Any], tasks: list[_BuiltTask], settings: EvalSettings,
                 costs: Any, peak: Any):
        self.db, self.run_id, self.settings, self.costs, self.peak = db, run_id, settings, costs, peak
        self.jobs = {j.model_key: j for j in jobs}
        self.tasks = {t.job.task_key: t for t in tasks}
        self.writer: Any = None
        self.results: dict[tuple[str, str], PairResult] = {}

    def score(self, pairs: list[tuple[str, str]]) -> None:
        for pair in pairs:
            self.results[pair] = self._score(*pair)

    def result(self, model_key: str, task_key: str) -> PairResult:
        if (model_key, task_key) not in self.results:
            self.score([(model_key, task_key)])
        return self.results[(model_key, task_key)]

    def _score(self, model_key: str, task_key: str) -> PairResult:
        from beyondscale.models import ModelFacts
        from beyondscale.work.score import score_unit

        job, task, t = self.jobs[model_key], self.tasks[task_key], self.tasks[task_key].job
        facts = ModelFacts.from_dict(self.db.model_facts(model_key))
        aggregates, efficiency = score_unit(self.db, model_key, task_key, task.spec, t.items, t.item_keys,
                                            facts=facts, costs=self.costs, peak=self.peak, seed=self.settings.seed)
        computed = self.writer.computed[(model_key, task_key)]
        self.db.put_run_unit(self.run_id, model_key, task_key, "done", items_computed=computed)
        metrics: dict[str, float | None] = {}
        for name, (value, stderr) in aggregates.items():
            metrics[name] = value
            metrics[f"{name}_stderr"] = stderr
        # `seconds` is the measured evaluation time, resumed pieces included.
        return PairResult(job.ref.name, model_key, t.task, task_key, metrics, len(t.items),
                          round(efficiency.get("seconds") or 0.0, 3), efficiency,
                          resumed_items=len(t.items) - computed)


class _Bars:
    """One progress bar per (model, task), kept in step with the store (other processes write too)."""

    def __init__(self, db: Any, progress: Any, jobs: list[Any], tasks: list[Any]):
        self.db, self.progress = db, progress
        self.pairs = [(j, t) for j in jobs for t in tasks]
        self.total = progress.add_task("all units", total=sum(len(t.items) for _, t in self.pairs)) \
            if len(self.pairs) > 1 else None
        self.bars = {(j.model_key, t.task_key): progress.add_task(f"{j.ref.name} · {t.task}", total=len(t.items))
                     for j, t in self.pairs}
        self.sync()

    def sync(self) -> None:
        total = 0
        for job, task in self.pairs:
            done = len(self.db.done_item_keys(job.model_key, task.task_key) & set(task.item_keys))
            self.progress.update(self.bars[(job.model_key, task.task_key)], completed=done)
            total += done
        if self.total is not None:
            self.progress.update(self.total, completed=total)

    def advance(self, model_key: str, task_key: str, n: int) -> None:
        self.progress.advance(self.bars[(model_key, task_key)], n)
        if self.total is not None:
            self.progress.advance(self.total, n)


# ---- generation benchmark ------------------------------------------------------------------------
def bench(
    models: Sequence[str],
    *,
    prompt_tokens: Sequence[int] = (128, 512),
    new_tokens: int = 128,
    repetitions: int = 5,
    warmup: int = 1,
    store: str | Path = DEFAULT_STORE,
    settings: EvalSettings | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Generation speed as llama-bench / optimum-benchmark report it; rows are also stored.

    Each model is one job (here, or a Ray task with `executor`); this process alone writes the store.
    """
    from beyondscale import measure
    from beyondscale.executors.jobs import map_jobs, raise_failures
    from beyondscale.models import parse_model_ref
    from beyondscale.models.load import resolve_device
    from beyondscale.store import Store

    settings = settings or EvalSettings()
    if not models:
        raise UserError("--model: give at least one model")
    if not prompt_tokens or any(int(n) < 1 for n in prompt_tokens):
        raise UserError(f"--prompt-tokens {','.join(map(str, prompt_tokens))}: expected positive integers")
    if new_tokens < 1 or repetitions < 1 or warmup < 0:
        raise UserError("--new-tokens and --repetitions must be >= 1, --warmup >= 0")
    device = executor.resolve_device(settings.device) if hasattr(executor, "resolve_device") else \
        resolve_device(settings.device)
    refs = [parse_model_ref(m) for m in models]
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run("bench", {"models": list(models), "prompt_tokens": list(prompt_tokens),
                                    "new_tokens": new_tokens, "repetitions": repetitions, **asdict(settings)},
                          environment)
    lengths = [int(n) for n in prompt_tokens]
    jobs = [_bench_job(i, ref, settings, device, executor, (lengths, new_tokens, repetitions, warmup))
            for i, ref in enumerate(refs)]
    done = {}
    for outcome in map_jobs(executor, jobs):
        done[outcome.name] = outcome
        if outcome.ok:
            key, identity, facts, rows, env_key = outcome.value  # env_key: the machine that ran it
            ref = refs[int(outcome.name)]
            db.put_model(key, ref.name, settings.family, ref.to_dict(), identity, facts)
            for row in rows:
                db.put_benchmark(run_id, key, row, env_key)
    failed = [r for r in done.values() if not r.ok]
    db.finish_run(run_id, "failed" if failed else "done")
    db.close()
    raise_failures([replace(r, name=refs[int(r.name)].name) for r in failed], "bench")
    return pd.DataFrame([{"model": refs[i].name, **row} for i in range(len(refs)) for row in done[str(i)].value[3]])


def _bench_job(index: int, ref: Any, settings: EvalSettings, device: str, executor: Any, plan: tuple) -> Any:
    """The model's benchmark as a job with the resources it asks Ray for (named by its position)."""
    from beyondscale.executors.jobs import Job
    from beyondscale.executors.resources import Resources, model_resources

    resources = getattr(executor, "resources", Resources())
    opts = model_resources(ref, settings.dtype, device, resources)
    return Job(str(index), _bench_model, (ref, settings, device, *plan), num_cpus=opts["num_cpus"],
               num_gpus=opts["num_gpus"], memory_bytes=int(opts["memory"]))


def _bench_model(ref: Any, settings: EvalSettings, device: str, prompt_tokens: list[int], new_tokens: int,
                 repetitions: int, warmup: int) -> tuple[str, str, dict, list[dict], str]:
    """One model's generation benchmark, pure (no store): (model key, identity, facts, rows, environment)."""
    from beyondscale import measure
    from beyondscale.models import load_model

    identity = ref.identity()
    key = _model_key(ref, identity, settings, device)
    meter = measure.Meter(device=device, cpu_watts=settings.cpu_watts)  # peak memory above this baseline
    loaded = load_model(ref, dtype=settings.dtype, device=device, trust_remote_code=settings.trust_remote_code,
                        identity=identity)
    max_ctx = loaded.facts.max_context or 10**9
    for n in prompt_tokens:
        if n + new_tokens > max_ctx:
            raise UserError(f"--prompt-tokens {n} + --new-tokens {new_tokens} exceed {ref.name}'s context "
                            f"({max_ctx})")
    rows = measure.bench_generation(loaded.model, loaded.tokenizer, prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                                    repetitions=repetitions, warmup=warmup, meter=meter, seed=settings.seed)
    return key, identity, loaded.facts.to_dict(), rows, measure.environment().get("environment_key", "")


# ---- results -----------------------------------------------------------------------------------
def _open(store: str | Path):
    from beyondscale.store import Store

    if not Path(store).exists():
        raise UserError(f"--store {store}: no such store (run `beyondscale eval` first)")
    return Store(store, create=False)


def list_runs(store: str | Path = DEFAULT_STORE) -> pd.DataFrame:
    return _open(store).runs()


def show_run(run_id: str, store: str | Path = DEFAULT_STORE) -> pd.DataFrame:
    from beyondscale.store import load_frames, results_table

    db = _open(store)
    if run_id == "latest":
        runs = db.runs()
        if runs.empty:
            raise UserError(f"--store {store}: holds no runs yet")
        run_id = runs["run_id"].iloc[-1]
    elif not db.run_exists(run_id):
        close = [r for r in db.runs()["run_id"] if r.startswith(run_id[:8])][:5]
        raise UserError(f"run {run_id}: not in {store}" + (f" (close: {', '.join(close)})" if close else ""))
    return results_table(load_frames(db, touched_by=run_id, with_items=False))


def export_run(run_id: str, out: str | Path, fmt: str = "csv", store: str | Path = DEFAULT_STORE) -> Path:
    """Write a run's results (scores + sizes + efficiency with sources) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise UserError(f"--format {fmt}: expected csv or json")
    table = show_run(run_id, store)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "csv":
        table.to_csv(tmp, index=False)
    else:
        tmp.write_text(json.dumps(table.to_dict(orient="records"), indent=2, default=str), encoding="utf-8")
    tmp.replace(out)
    return out


def load_store_frames(store: str | Path = DEFAULT_STORE, **filters: Any):
    from beyondscale.store import load_frames

    return load_frames(_open(store), **filters)


# ---- analysis and report -------------------------------------------------------------------------
def analyze(
    store: str | Path = DEFAULT_STORE,
    *,
    models: list[str] | None = None,
    family: str | None = None,
    tasks: list[str] | None = None,
    metrics: list[str] | None = None,
    min_gain_per_doubling: float | None = None,
    constraints: dict[str, Any] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    primary: str | None = None,
):
    """What scale buys in this store: returns the `Analysis` (DataFrames) and the frames it used.

    `primary`: the task that decides the recommendation when no model dominates.
    """
    from beyondscale.analysis import analyze as run_analysis

    frames = load_store_frames(store, models=models, family=family, tasks=tasks)
    if frames.scores.empty:
        raise UserError(f"--store {store}: no scored results match (models={models}, family={family}, tasks={tasks})")
    result = run_analysis(
        frames.models, frames.scores, frames.efficiency, frames.items, tasks=tasks, metrics=metrics,
        min_gain_per_doubling=min_gain_per_doubling, constraints=constraints, seed=seed, n_boot=n_boot,
        primary=primary, task_versions=frames.tasks,
    )
    return result, frames


def report(
    out: str | Path = "report.html",
    *,
    store: str | Path = DEFAULT_STORE,
    fmt: str | None = None,
    title: str = "beyondscale report",
    analyzed: tuple[Any, Any] | None = None,
    inference_tokens: float | None = None,
    **analyze_kwargs: Any,
) -> Path:
    """Write the report; `analyzed` = (Analysis, Frames) from `analyze()` skips computing them again;
    `inference_tokens`: tokens a trained ladder's model will serve (its inference-aware optimum)."""
    from beyondscale.report import write_report

    out = Path(out)
    fmt = fmt or {".md": "md", ".json": "json"}.get(out.suffix, "html")
    if fmt not in ("html", "md", "json"):
        raise UserError(f"--format {fmt}: expected html, md or json")
    from beyondscale.analysis.ladder import read_ladder
    from beyondscale.interpret.report import report_sections
    from beyondscale.report.lab_sections import lab_only, ladder_sections, with_ladder

    if inference_tokens is not None and not inference_tokens >= 0:
        raise UserError(f"--inference-tokens {inference_tokens}: must be a non-negative number of tokens")
    ladder = read_ladder(store, inference_tokens=inference_tokens)  # models trained into this store by `train`/`sweep`: empty when none
    try:
        result, frames = analyzed if analyzed is not None else analyze(store, **analyze_kwargs)
    except UserError:  # nothing evaluated yet: a trained ladder is still worth a report
        if ladder.empty:
            raise
        result, frames = lab_only(), load_store_frames(store)
    runs = list_runs(store)
    run_info = {"store": str(store), "runs": len(runs), "python": sys.version.split()[0]}
    # Probe results (lens, bias, routing, transparency) stored by `explain` and `bias`: [] when none ran.
    write_report(out, fmt, with_ladder(result, ladder), models=frames.models, scores=frames.scores,
                 efficiency=frames.efficiency, title=title, run_info=run_info,
                 extra_sections=[*ladder_sections(ladder), *report_sections(store)])
    return out


def fit(data: str | Path, *, exclude_worst: int = 0, n_boot: int = 1000, seed: int = 0):
    """Fit scaling laws on points a user brings (CSV: params, tokens?, loss|score)."""
    from beyondscale.analysis import fit_points, read_points_csv

    return fit_points(read_points_csv(data), exclude_worst=exclude_worst, n_boot=n_boot, seed=seed)


# ---- the quickstart study ------------------------------------------------------------------------
@dataclass
class QuickstartResult:
    report: Path
    run_id: str
    verdict: list[str]
    stage_seconds: dict[str, float]
    analysis: Any = None


def quickstart(
    *,
    store: str | Path = DEFAULT_STORE,
    out: str | Path = "report.html",
    work_dir: str | Path = "out/quickstart",
    budget_minutes: float | None = None,
    corpus: str | None = None,
    fresh: bool = False,
    settings: EvalSettings | None = None,
    show_progress: bool = True,
    say: Any = None,
    plan: Any = None,
    real_models: dict[str, str] | None = None,
) -> QuickstartResult:
    """`make run`: corpus -> curate -> trained ladder (dense, MoE, curated) + two real models -> eval -> probes
    -> analyze -> report (`beyondscale.quickstart.study`). Re-running reuses the store and the checkpoints.
    `plan` (a quickstart.plan.StudyPlan) replaces the one sized from `budget_minutes`; `real_models`
    (name -> model spec) replaces the two packaged models."""
    from beyondscale.quickstart.plan import plan_for
    from beyondscale.quickstart.study import run_study

    settings = settings or EvalSettings()
    study, analysis, path = run_study(store=str(store), work_dir=Path(work_dir), out=Path(out),
                                      plan=plan or plan_for(budget_minutes), corpus=corpus, fresh=fresh,
                                      device=settings.device, batch_size=settings.batch_size,
                                      show_progress=show_progress, say=say, real_models=real_models,
                                      quantize=settings.quantize)
    return QuickstartResult(path, ",".join(study.run_ids), list(analysis.verdict), study.stages, analysis)
