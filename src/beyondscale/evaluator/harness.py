"""`evaluate` for lm-evaluation-harness tasks: lm-eval builds and scores, our engine answers, the store keeps it.

Per model: the model loads once; `BeyondscaleLM` answers lm-eval's requests with the engine, each answer kept
in the store's `lm_requests` as soon as its batch is done (a re-run, or a run resumed after kill -9, computes
only what is missing), each engine batch measured by our Meter. Then per task: the task is registered under
its content identity (`task_identity`: lm-eval's dumped config, its documents, lm-eval's version, plus the
request options that change prompts), its documents stored under lm-eval's `doc_hash`, its metrics and
per-document scores written as one score set, and the cost this run spent on it (the run's measured total,
split by the task's share of the requests computed) added to its measurements.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.evaluator import harness_rows as rows
from beyondscale.evaluator.keys import task_key
from beyondscale.evaluator.outcome import EvalResult, PairResult
from beyondscale.evaluator.settings import EvalSettings
from beyondscale.keys import content_key

HARNESS_FLAGS = ("output_path", "log_samples", "apply_chat_template")  # lm-eval's evaluate loop does these


def load_harness_tasks(tasks: Sequence[str], settings: EvalSettings) -> Any:
    """lm-eval's tasks for the names, folders and files asked (tasks.harness.load_tasks). lm-eval's installed
    tasks are indexed (~15 s, once per process) only when a name is not a task file of the user's."""
    from beyondscale.tasks.harness import load_tasks, split_names, task_manager

    names = split_names(list(tasks))
    files_only = all(Path(n).expanduser().is_file() for n in names)
    manager = task_manager(settings.include_path, allow_task_code=settings.allow_task_code,
                           include_defaults=not files_only or bool(settings.include_path))
    return load_tasks(names, manager=manager)


def harness_only(loaded: Any, settings: EvalSettings) -> bool:
    """lm-eval's own loop drives the run when it asks for groups' aggregates or lm-eval's output files."""
    return bool(loaded.groups) or any(getattr(settings, f) for f in HARNESS_FLAGS)


def run_kwargs(settings: EvalSettings) -> dict[str, Any]:
    """simple_evaluate's arguments for these settings (the same for planning, replaying and lm-eval's own run)."""
    return {"num_fewshot": settings.num_fewshot, "limit": settings.limit, "gen_kwargs": settings.gen_kwargs,
            "apply_chat_template": settings.apply_chat_template, "system_instruction": settings.system_instruction,
            "fewshot_random_seed": settings.seed, "bootstrap_iters": settings.bootstrap_iters}


def register_task(db: Any, key: str, name: str, task: Any, identity: Any, settings: EvalSettings) -> None:
    """The task row: its name, output type, lm-eval's config and identity (`task_identity`, already computed:
    it reads every document)."""
    from beyondscale.tasks.harness_identity import config_for_key

    config = config_for_key(task)
    db.put_task(key, name, str(config.get("output_type", "")), identity.config_key, config,
                {"identity": identity.to_dict(), "apply_chat_template": settings.apply_chat_template,
                 "system_instruction": settings.system_instruction, "seed": settings.seed,
                 **settings.score_config()})


def lm_eval_scorer(loaded: Any, planned: Any, settings: EvalSettings, keep: Any = None) -> Any:
    """work.score's scorer for one planned task: the engine's results replayed to lm-eval, which scores them
    (`keep(results)` first, e.g. to share the answers per request)."""
    from beyondscale.tasks.lm_eval_items import score_planned

    def score(results: list[Any]) -> tuple[dict, list[dict]]:
        if keep is not None:
            keep(results)
        out = score_planned(loaded, planned, results, run_kwargs(settings))
        _, score_rows = rows.document_rows(out["samples"][planned.name])
        aggregates = rows.aggregates(out["results"].get(planned.name, {}))
        return rows.with_additions(aggregates, score_rows, settings.seed), score_rows

    return score


def check_output_path(path: str | None) -> None:
    if path and Path(path).exists() and not Path(path).is_dir():
        raise UserError(f"--output-path {path}: is a file; give a folder (lm-eval writes its results JSON there)")


class _Metered:
    """BeyondscaleLM's `batch_context` and `request_cache` in one: each engine batch measured by the Meter, and
    the answers stored right after it remembered with that batch's measurement (so each task gets the cost of
    exactly the requests of its own that each batch computed)."""

    def __init__(self, meter: Any, cache: Any):
        self.meter, self.cache = meter, cache
        self.last: Any = None
        self.batches: list[tuple[Any, list[str]]] = []  # (measurement, request keys it computed)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Any]:
        with self.meter.measure() as block:
            yield block
        self.last = block.result

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return self.cache.get_many(keys)

    def put_many(self, pairs: Sequence[tuple[str, Any]]) -> None:
        pairs = list(pairs)
        self.cache.put_many(pairs)
        if self.last is not None:
            self.batches.append((self.last, [k for k, _ in pairs]))
            self.last = None


def evaluate_harness(models: Sequence[str], loaded: Any, tasks: Sequence[str], *, store: str | Path,
                     settings: EvalSettings, command: str = "eval") -> EvalResult:
    """Every model on lm-eval's tasks `loaded` (named `tasks`), lm-eval's evaluate loop driving; inputs are checked
    and tasks built before any model loads."""
    from beyondscale import measure
    from beyondscale.evaluator.model_jobs import parse_models
    from beyondscale.store import Store

    refs = parse_models(models)
    device = _device(settings.device)
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run(command, {"models": list(models), "tasks": list(tasks), **asdict(settings)}, environment)
    out = EvalResult(run_id, str(store))
    try:
        for ref in refs:
            out.results.extend(_evaluate_model(db, run_id, ref, loaded, settings, device,
                                               environment.get("environment_key", "")))
    except UserError:  # the user's input refused (e.g. unreadable weights): no run is left behind if none was scored
        if not out.results:
            db.discard_run(run_id)
        else:
            db.finish_run(run_id, "failed")
        db.close()
        raise
    except BaseException:
        db.finish_run(run_id, "failed")
        db.close()
        raise
    out.succeeded = len(out.results)
    db.finish_run(run_id, "done")
    db.close()
    return out


def _device(device: str) -> str:
    from beyondscale.executors import LocalExecutor

    return LocalExecutor().resolve_device(device)


def _evaluate_model(db: Any, run_id: str, ref: Any, loaded: Any, settings: EvalSettings, device: str,
                    env_key: str) -> list[PairResult]:
    from beyondscale import measure
    from beyondscale.engine import Engine
    from beyondscale.engine.lm_eval_model import BeyondscaleLM
    from beyondscale.evaluator.model_jobs import model_job
    from beyondscale.models import load_model
    from beyondscale.store.requests import RequestCache

    job, label = model_job(db, ref, settings, device)
    meter = measure.Meter(device=device, cpu_watts=settings.cpu_watts)  # memory baseline before the model loads
    model = load_model(job.ref, dtype=settings.dtype, device=device, trust_remote_code=settings.trust_remote_code,
                       identity=job.identity, quantize=settings.quantize)
    db.put_model(job.model_key, label.name, label.family, label.ref, label.identity, model.facts.to_dict())
    engine = Engine(model.model, model.tokenizer, batch_size=settings.batch_size, max_length=settings.max_length,
                    add_bos_token=settings.add_bos_token, rolling_stride=settings.rolling_stride)
    metered = _Metered(meter, RequestCache(db, job.model_key, run_id))
    lm = BeyondscaleLM(engine=engine, model_key=job.model_key, request_cache=metered, batch_context=metered)
    results = _run(lm, loaded, settings, ref)
    return _store_results(db, run_id, job, label.name, model.facts, loaded, results, settings, metered.batches,
                          env_key, device)


def _run(lm: Any, loaded: Any, settings: EvalSettings, ref: Any) -> dict[str, Any]:
    """lm-eval's simple_evaluate; with --output-path, its own results JSON and samples files as its CLI writes."""
    from beyondscale.tasks.harness import run_harness

    tracker = None
    if settings.output_path:
        from lm_eval.loggers import EvaluationTracker

        tracker = EvaluationTracker(output_path=settings.output_path)
    results = run_harness(lm, loaded, **run_kwargs(settings), evaluation_tracker=tracker,
                          model_args=f"pretrained={ref.spec},dtype={settings.dtype}")
    if results is None:
        raise UserError("--tasks: lm-eval returned no results")
    if tracker is not None:
        samples = copy.deepcopy(results["samples"])  # the tracker rewrites samples in place as it saves them
        tracker.save_results_aggregated(results={k: v for k, v in results.items() if k != "samples"},
                                        samples=samples if settings.log_samples else None)
        if settings.log_samples:
            for name in results["configs"]:
                tracker.save_results_samples(task_name=name, samples=samples[name])
    return results


def _store_results(db: Any, run_id: str, job: Any, model_name: str, facts: Any, loaded: Any,
                   results: dict[str, Any], settings: EvalSettings, batches: list[tuple[Any, list[str]]],
                   env_key: str, device: str) -> list[PairResult]:
    """Each leaf task's documents, cost and score set, then each group's aggregate metrics."""
    written = {k for _, keys in batches for k in keys}
    samples = results["samples"]
    names = [n for n in results["configs"] if n in samples and n in loaded.tasks]
    per_doc = {n: rows.request_keys(job.model_key, results["configs"][n].get("output_type", ""), samples[n])
               for n in names}
    computed = {n: rows.computed_docs(per_doc[n], written) for n in names}
    out, keys = [], {}
    for name in names:
        docs, requests = computed[name]
        unit = _TaskUnit(db, run_id, job.model_key, name, loaded.tasks[name], settings)
        keys[name] = unit.key
        unit.put_documents(samples[name])
        if requests:
            unit.put_cost(rows.cost_of(batches, set().union(*per_doc[name].values())), docs, env_key)
        out.append(unit.score(results["results"].get(name, {}), samples[name], facts, device, model_name, docs))
    _store_groups(db, run_id, job.model_key, results, keys)
    return out


class _TaskUnit:
    """One (model, lm-eval task) in the store."""

    def __init__(self, db: Any, run_id: str, model_key: str, name: str, task: Any, settings: EvalSettings):
        from beyondscale.tasks.harness_identity import task_identity

        self.db, self.run_id, self.model_key, self.name, self.settings = db, run_id, model_key, name, settings
        identity = task_identity(task, settings.seed)
        self.key = task_key(identity, settings)
        self.batch_key = content_key(["lm_eval", run_id, self.key])
        register_task(db, self.key, name, task, identity, settings)

    def put_documents(self, samples: list[dict]) -> None:
        from beyondscale.store.requests import put_items

        items, self.score_rows = rows.document_rows(samples)
        put_items(self.db, self.model_key, self.key, items, self.batch_key)

    def put_cost(self, measurement: Any, docs: int, env_key: str) -> None:
        from beyondscale.store.requests import put_measurement

        put_measurement(self.db, self.run_id, self.model_key, self.key, self.batch_key, docs,
                        {**measurement.to_dict(), "attributed": "per engine batch, by its share of the batch's requests"}, env_key)

    def score(self, task_results: dict[str, Any], samples: list[dict], facts: Any, device: str, model_name: str,
              computed_docs: int) -> PairResult:
        aggregates = rows.with_additions(rows.aggregates(task_results), self.score_rows, self.settings.seed)
        efficiency = self._efficiency(facts, device)
        self.db.write_scores(self.model_key, self.key, aggregates, self.score_rows, efficiency)
        self.db.put_run_unit(self.run_id, self.model_key, self.key, "done", items_computed=computed_docs)
        return PairResult.scored(model_name, self.model_key, self.name, self.key, aggregates, len(self.score_rows),
                                 efficiency, computed_docs)

    def _efficiency(self, facts: Any, device: str) -> dict[str, Any]:
        """From every measurement stored for the unit (a resumed run adds up its pieces): the unit path's figures."""
        from beyondscale import measure
        from beyondscale.work.score import unit_efficiency

        return unit_efficiency(self.db, self.model_key, self.key, self.score_rows, len(self.score_rows), facts=facts,
                               costs=self.settings.costs(), peak=measure.peak_flops(device))


def _store_groups(db: Any, run_id: str, model_key: str, results: dict[str, Any], keys: dict[str, str]) -> None:
    """A group's aggregate metrics (lm-eval's `groups`), keyed by its name and its members' task keys."""
    from beyondscale.store.requests import put_group_scores

    subtasks, counts = results.get("group_subtasks", {}), results.get("n-samples", {})
    for group, metrics in results.get("groups", {}).items():
        members = subtasks.get(group, [])
        key = content_key({"lm_eval_group": group, "members": sorted(keys.get(m, m) for m in members)})
        db.put_task(key, group, "group", key, {"group": group, "members": members}, {})
        n_items = sum(int(counts.get(m, {}).get("effective", 0)) for m in members)
        put_group_scores(db, model_key, key, rows.aggregates(metrics), n_items)
        db.put_run_unit(run_id, model_key, key, "done", items_computed=0)
