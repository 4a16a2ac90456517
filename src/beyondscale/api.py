"""The public Python API. Every CLI command is a thin wrapper over one function here.

Functions return plain data (dataclasses, dicts, pandas DataFrames) so notebooks and scripts can
use them without the CLI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.errors import UserError

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
    # measurement
    cpu_watts: float | None = None
    region: str | None = None
    grid_gco2_per_kwh: float | None = None
    pue: float = 1.0
    usd_per_hour: float | None = None

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
class EvalResult:
    run_id: str
    store: str
    results: list[PairResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "store": self.store,
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
) -> EvalResult:
    """Score and meter every (model, task) pair; everything lands in the store, resumably."""
    from beyondscale import measure
    from beyondscale.models import parse_model_ref
    from beyondscale.models.load import resolve_device
    from beyondscale.store import Store
    from beyondscale.tasks import build_task, load_task

    settings = settings or EvalSettings()
    if not models:
        raise UserError("--model: give at least one model")
    if not tasks:
        raise UserError("--tasks: give at least one task")
    if settings.limit is not None and settings.limit <= 0:
        raise UserError(f"--limit {settings.limit}: must be a positive number of documents")
    costs = measure.CostConfig(
        usd_per_hour=settings.usd_per_hour, region=settings.region, grid_gco2_per_kwh=settings.grid_gco2_per_kwh,
        pue=settings.pue,
    )
    # Validate every input before any model loads: user mistakes fail fast and store nothing.
    device = resolve_device(settings.device)
    refs = [parse_model_ref(m) for m in models]
    specs = []
    for name in tasks:
        spec = load_task(name)
        if settings.num_fewshot is not None:
            spec = spec.model_copy(update={"num_fewshot": settings.num_fewshot})
        built = build_task(spec, limit=settings.limit, seed=settings.seed)
        if not built.items:
            raise UserError(f"task {spec.name}: no documents to evaluate")
        specs.append((spec, built))
    meter = measure.Meter(device=device, cpu_watts=settings.cpu_watts)
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run(command, {"models": list(models), "tasks": list(tasks), **asdict(settings)}, environment)
    peak = measure.peak_flops(device)
    out = EvalResult(run_id, str(store))
    try:
        for ref in refs:
            model = _LazyModel(ref, settings, device, db)
            db.put_model(model.key, ref.name, settings.family, ref.to_dict(), model.identity, model.facts.to_dict())
            if (record := ref.lab_record()) is not None:
                db.put_training_record(model.key, record)
            for spec, built in specs:
                out.results.append(
                    _evaluate_pair(db, run_id, model, spec, built, settings, meter, costs, peak, environment,
                                   show_progress)
                )
            model.release()
    except KeyboardInterrupt:
        db.finish_run(run_id, "interrupted")
        raise
    except BaseException:
        db.finish_run(run_id, "failed")
        raise
    db.finish_run(run_id)
    db.close()
    return out


class _LazyModel:
    """A model that is loaded only if some item still needs computing: a finished study re-runs in seconds."""

    def __init__(self, ref: Any, settings: EvalSettings, device: str, db: Any, facts_from_store: bool = True):
        from beyondscale.models.load import resolve_dtype

        self.ref, self.settings, self.device = ref, settings, device
        self.identity = ref.identity()
        dtype = resolve_dtype(settings.dtype, device)
        self.key = _hash({"identity": self.identity, "dtype": str(dtype).removeprefix("torch.")})
        self._loaded: Any = None
        self._engine: Any = None
        self._facts = db.model_facts(self.key) if facts_from_store else None
        if self._facts is None:
            self._facts = self.loaded.facts

    @property
    def loaded(self) -> Any:
        from beyondscale.models import load_model

        if self._loaded is None:
            self._loaded = load_model(self.ref, dtype=self.settings.dtype, device=self.device,
                                      trust_remote_code=self.settings.trust_remote_code, identity=self.identity)
        return self._loaded

    @property
    def facts(self) -> Any:
        from beyondscale.models import ModelFacts

        return self._facts if isinstance(self._facts, ModelFacts) else ModelFacts.from_dict(self._facts)

    @property
    def engine(self) -> Any:
        from beyondscale.engine import Engine

        if self._engine is None:
            s = self.settings
            self._engine = Engine(self.loaded.model, self.loaded.tokenizer, batch_size=s.batch_size,
                                  max_length=s.max_length, add_bos_token=s.add_bos_token,
                                  rolling_stride=s.rolling_stride)
        return self._engine

    def release(self) -> None:
        self._loaded = self._engine = None


def _task_key(spec_hash: str, settings: EvalSettings) -> str:
    return _hash({"spec": spec_hash, "score_config": settings.score_config()})


def _evaluate_pair(db, run_id, model: _LazyModel, spec, built, settings, meter, costs, peak, environment,
                   show_progress) -> PairResult:
    from beyondscale import measure
    from beyondscale.engine.requests import ItemResult
    from beyondscale.metrics import score

    model_name, model_key = model.ref.name, model.key
    spec_hash = spec.spec_hash()  # hashes the data files: once per pair
    task_key = _task_key(spec_hash, settings)
    db.put_task(task_key, spec.name, spec.output_type, spec_hash,
                json.loads(spec.model_dump_json()), settings.score_config())
    items = built.items
    db.put_run_pair(run_id, model_key, task_key, "running", built.info.to_json())
    keys = [item.key() for item in items]
    key_of = dict(zip(items, keys, strict=True))
    done = db.done_item_keys(model_key, task_key)
    todo = [item for item, key in zip(items, keys, strict=True) if key not in done]
    env_key = environment.get("environment_key", "")
    with _progress(show_progress) as progress:
        bar = progress.add_task(f"{model_name} · {spec.name}", total=len(items), completed=len(items) - len(todo))
        for batch in model.engine.plan(todo) if todo else []:
            with meter.measure() as m:
                results = model.engine.run_batch(batch)
                m.add_tokens(sum(r.tokens_in for r in results), sum(r.tokens_out for r in results))
            batch_keys = [key_of[item] for item in batch]
            rows = [(k, it.doc_id, asdict(it), res.to_json()) for k, it, res in zip(batch_keys, batch, results,
                                                                                  strict=True)]
            db.write_batch(run_id, model_key, task_key, _hash(batch_keys), rows, m.result.to_dict(), env_key)
            progress.advance(bar, len(batch))
    stored = db.item_results(model_key, task_key, keys)
    results = [ItemResult.from_json(stored[k]) for k in keys]
    metric_names = spec.metric_names()
    scores = score(spec.output_type, metric_names, items, results,
                   metric_kwargs={m: spec.metric_kwargs(m) for m in metric_names}, seed=settings.seed)
    # Efficiency comes from every batch ever measured for this pair (a resumed run adds up its
    # pieces); accuracy is scaled to that many items so $/correct stays a ratio of like with like.
    batches = db.measurement_rows(model_key, task_key)
    total = sum(measure.Measurement.from_dict(r) for r in batches) if batches else measure.Measurement()
    n_measured = sum(r["n_items"] for r in batches) or len(items)
    corrects = [r.get("correct") for r in scores.rows]
    n_correct = None
    if corrects and all(c is not None for c in corrects):
        n_correct = round(sum(float(c) for c in corrects) * n_measured / len(items))
    efficiency = measure.derive(
        total, flops_per_token=model.facts.flops_per_token, n_items=n_measured, n_correct=n_correct,
        costs=costs, peak_flops=peak, facts=model.facts,
    )
    if len({r["environment_key"] for r in batches}) > 1:
        efficiency["warning"] = "batches were measured on different machines; figures mix environments"
    db.write_scores(run_id, model_key, task_key, scores.aggregates, scores.rows, efficiency)
    db.put_run_pair(run_id, model_key, task_key, "done")
    metrics: dict[str, float | None] = {}
    for name, (value, stderr) in scores.aggregates.items():
        metrics[name] = value
        metrics[f"{name}_stderr"] = stderr
    # `seconds` is the measured evaluation time, resumed pieces included.
    return PairResult(model_name, model_key, spec.name, task_key, metrics, len(items),
                      round(efficiency.get("seconds") or 0.0, 3), efficiency, resumed_items=len(items) - len(todo))


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
) -> pd.DataFrame:
    """Generation speed as llama-bench / optimum-benchmark report it; rows are also stored."""
    from beyondscale import measure
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
    device = resolve_device(settings.device)
    refs = [parse_model_ref(m) for m in models]
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run("bench", {"models": list(models), "prompt_tokens": list(prompt_tokens),
                                    "new_tokens": new_tokens, "repetitions": repetitions, **asdict(settings)},
                          environment)
    meter = measure.Meter(device=device, cpu_watts=settings.cpu_watts)
    rows = []
    for ref in refs:
        model = _LazyModel(ref, settings, device, db, facts_from_store=False)
        db.put_model(model.key, ref.name, settings.family, ref.to_dict(), model.identity, model.facts.to_dict())
        max_ctx = model.facts.max_context or 10**9
        for n in prompt_tokens:
            if int(n) + new_tokens > max_ctx:
                raise UserError(f"--prompt-tokens {n} + --new-tokens {new_tokens} exceed {ref.name}'s context "
                                f"({max_ctx})")
        for row in measure.bench_generation(model.loaded.model, model.loaded.tokenizer,
                                            prompt_tokens=[int(n) for n in prompt_tokens], new_tokens=new_tokens,
                                            repetitions=repetitions, warmup=warmup, meter=meter,
                                            seed=settings.seed):
            db.put_benchmark(run_id, model.key, row, environment.get("environment_key", ""))
            rows.append({"model": ref.name, **row})
        model.release()
    db.finish_run(run_id)
    db.close()
    return pd.DataFrame(rows)


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
    return results_table(load_frames(db, run_id=run_id, with_items=False))


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
):
    """What scale buys in this store: returns the `Analysis` (DataFrames) and the frames it used."""
    from beyondscale.analysis import analyze as run_analysis

    frames = load_store_frames(store, models=models, family=family, tasks=tasks)
    if frames.scores.empty:
        raise UserError(f"--store {store}: no scored results match (models={models}, family={family}, tasks={tasks})")
    result = run_analysis(
        frames.models, frames.scores, frames.efficiency, frames.items, tasks=tasks, metrics=metrics,
        min_gain_per_doubling=min_gain_per_doubling, constraints=constraints, seed=seed, n_boot=n_boot,
    )
    return result, frames


def report(
    out: str | Path = "report.html",
    *,
    store: str | Path = DEFAULT_STORE,
    fmt: str | None = None,
    title: str = "beyondscale report",
    analyzed: tuple[Any, Any] | None = None,
    **analyze_kwargs: Any,
) -> Path:
    """Write the report; `analyzed` = (Analysis, Frames) from `analyze()` skips computing them again."""
    from beyondscale.report import write_report

    out = Path(out)
    fmt = fmt or {".md": "md", ".json": "json"}.get(out.suffix, "html")
    if fmt not in ("html", "md", "json"):
        raise UserError(f"--format {fmt}: expected html, md or json")
    result, frames = analyzed if analyzed is not None else analyze(store, **analyze_kwargs)
    runs = list_runs(store)
    run_info = {"store": str(store), "runs": len(runs), "python": sys.version.split()[0]}
    write_report(out, fmt, result, models=frames.models, scores=frames.scores, efficiency=frames.efficiency,
                 title=title, run_info=run_info)
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
    limit: int | None = None,
    settings: EvalSettings | None = None,
    show_progress: bool = True,
) -> QuickstartResult:
    """`make run`: two real models from PyPI, three offline tasks, eval -> analyze -> report."""
    from beyondscale.quickstart import PACKAGED_MODELS, build_quickstart_tasks

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    task_files = build_quickstart_tasks(Path(work_dir) / "tasks", n_items=limit)
    stages["build tasks"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    models = [f"{name}={entry.path()}" for name, entry in PACKAGED_MODELS.items()]
    stages["locate models"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    settings = settings or EvalSettings()
    settings.family = settings.family or "quickstart"
    result = evaluate(models, [str(p) for p in task_files], store=store, settings=settings,
                      show_progress=show_progress, command="quickstart")
    stages["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    analysis, frames = analyze(store, models=[r.model_key for r in result.results],
                               tasks=sorted({r.task for r in result.results}))
    stages["analyze"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    path = report(out, store=store, title="beyondscale quickstart: what twice the parameters buys",
                  analyzed=(analysis, frames))
    stages["report"] = time.perf_counter() - t0
    return QuickstartResult(path, result.run_id, list(analysis.verdict), stages, analysis)
