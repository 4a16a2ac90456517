"""`evaluate`: lm-eval's tasks -> their requests as Items -> executor -> the single writer -> lm-eval's scores,
every (model, task) pair resumable (or lm-eval's own loop, evaluator.harness, where only it can drive).

Packages that load torch (work, models, tasks) are imported where a function needs them, so the
command line starts without torch.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beyondscale.errors import UserError
from beyondscale.evaluator import keys
from beyondscale.evaluator.model_jobs import model_job, parse_models
from beyondscale.evaluator.outcome import EvalResult, PairResult, UnitFailure
from beyondscale.evaluator.progress import PairBars, progress_bars
from beyondscale.evaluator.settings import EvalSettings
from beyondscale.store import DEFAULT_STORE

if TYPE_CHECKING:
    from beyondscale.executors import Executor


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
    from beyondscale.executors import LocalExecutor

    settings = settings or EvalSettings()
    # Validate every input before any model loads: user mistakes fail fast and store nothing.
    _check_inputs(models, tasks, settings)
    from beyondscale.evaluator.harness import (
        check_output_path,
        evaluate_harness,
        harness_only,
        load_harness_tasks,
    )

    check_output_path(settings.output_path)
    costs = settings.costs()  # a wrong flag never waits for the tasks' data
    loaded = load_harness_tasks(tasks, settings)  # lm-eval resolves, builds and checks every task
    refs = parse_models(models)
    planned = None if harness_only(loaded, settings) else _plan(loaded, settings)
    if planned is None:  # groups, lm-eval's output files, chat templates, sampling: lm-eval drives the run
        if executor is not None and not isinstance(executor, LocalExecutor):
            raise UserError("--executor: these lm-eval tasks (groups, sampling, --output-path, chat templates) "
                            "run in this process only (use --executor local)")
        return evaluate_harness(models, loaded, tasks, store=store, settings=settings, command=command)
    return _evaluate_units(models, tasks, refs, loaded, planned, settings, costs, store=store, command=command,
                           executor=executor or LocalExecutor(), show_progress=show_progress)


def _evaluate_units(models: Sequence[str], tasks: Sequence[str], refs: list[Any], loaded: Any, planned: dict,
                    settings: EvalSettings, costs: Any, *, store: str | Path, command: str, executor: Executor,
                    show_progress: bool) -> EvalResult:
    """The unit path: every (model, task) pair's Items planned, run on the executor, written, scored by lm-eval."""
    from beyondscale import measure
    from beyondscale.store import Store

    device = executor.resolve_device(settings.device)
    built_tasks = _build_tasks(loaded, planned, settings)
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run(command, {"models": list(models), "tasks": list(tasks), **asdict(settings)}, environment)
    out = EvalResult(run_id, str(store))
    try:
        _evaluate_all(db, out, refs, built_tasks, settings, device, costs, environment.get("environment_key", ""),
                      executor, show_progress, loaded)
    except KeyboardInterrupt:
        db.finish_run(run_id, "interrupted")
        raise
    except BaseException:
        db.finish_run(run_id, "failed")
        raise
    if _refused_input(out):
        from beyondscale.work.logs import logs_root

        db.discard_run(run_id)
        db.close()
        shutil.rmtree(logs_root(store) / run_id, ignore_errors=True)
        raise UserError("; ".join(dict.fromkeys(f"--model {f.model}: {f.cause}" for f in out.failed)))
    db.finish_run(run_id, "failed" if out.failed else "done")
    db.close()
    return out


def _refused_input(out: EvalResult) -> bool:
    """Every unit failed on the user's input (corrupt weights, an unreadable tokenizer) and nothing was
    computed or found stored: the command stops with one line and leaves no empty run behind."""
    return bool(out.failed) and out.succeeded == 0 and out.skipped == 0 and all(f.user_error for f in out.failed)


def _check_inputs(models: Sequence[str], tasks: Sequence[str], settings: EvalSettings) -> None:
    from beyondscale.measure.meter import check_positive

    if not models:
        raise UserError("--model: give at least one model")
    if not tasks:
        raise UserError("--tasks: give at least one task")
    if settings.limit is not None and (settings.limit <= 0 or (settings.limit > 1 and settings.limit % 1)):
        raise UserError(f"--limit {settings.limit}: expected a count (1, 2, ...) or a fraction between 0 and 1")
    if settings.cpu_watts is not None:
        check_positive(settings.cpu_watts, "--cpu-watts")
    from beyondscale.models.quantize import check_method

    check_method(settings.quantize)


def _plan(loaded: Any, settings: EvalSettings) -> dict[str, Any] | None:
    """Each leaf task's documents as engine Items (lm-eval's requests, recorded), or None when some document's
    requests are not one Item (sampling, repeats): then lm-eval drives the whole run."""
    from beyondscale.evaluator.harness import run_kwargs
    from beyondscale.tasks.lm_eval_items import plan_items

    planned = plan_items(loaded, run_kwargs(settings))
    return None if any(p.items is None for p in planned.values()) else planned


@dataclass
class _BuiltTask:
    name: str
    planned: Any  # tasks.lm_eval_items.PlannedTask
    identity: Any  # tasks.harness_identity.TaskIdentity
    job: Any  # work.TaskJob with every item, keyed by the task key
    info: dict[str, Any]


def _build_tasks(loaded: Any, planned: dict[str, Any], settings: EvalSettings) -> list[_BuiltTask]:
    """Every leaf task's Items, keyed by lm-eval's content identity of the task and the settings that change
    its scores."""
    from beyondscale.tasks.harness_identity import task_identity
    from beyondscale.work import TaskJob

    out = []
    for name, task in loaded.tasks.items():
        plan = planned[name]
        if not plan.items:
            raise UserError(f"task {name}: no documents to evaluate")
        identity = task_identity(task, settings.seed)
        key = keys.task_key(identity, settings)
        job = TaskJob(key, name, tuple(plan.items), tuple(item.key() for item in plan.items))
        info = {"task": name, "seed": settings.seed, "doc_ids": sorted(plan.requests),
                "lm_eval_identity": identity.to_dict()}
        out.append(_BuiltTask(name, plan, identity, job, info))
    return out


def _evaluate_all(db: Any, out: EvalResult, refs: list[Any], tasks: list[_BuiltTask], settings: EvalSettings,
                  device: str, costs: Any, env_key: str, executor: Executor, show_progress: bool, loaded: Any) -> None:
    from beyondscale import measure
    from beyondscale.evaluator.harness import register_task
    from beyondscale.evaluator.shared_answers import fill_from_request_cache
    from beyondscale.store.claims import new_owner
    from beyondscale.work import Writer, run_all

    run_id = out.run_id
    jobs, labels = [], {}
    for ref in refs:
        job, label = model_job(db, ref, settings, device)
        jobs.append(job)
        labels[job.model_key] = label
    for t in tasks:
        register_task(db, t.job.task_key, t.name, loaded.tasks[t.name], t.identity, settings)
        for job in jobs:
            db.put_run_unit(run_id, job.model_key, t.job.task_key, "running", t.info)
            fill_from_request_cache(db, job.model_key, t.job.task_key, t.planned, t.job.item_keys)
    scorer = PairScorer(db, run_id, jobs, tasks, settings, costs, measure.peak_flops(device), loaded)
    with progress_bars(show_progress) as progress:
        bars = PairBars(db, progress, jobs, [t.job for t in tasks])
        scorer.writer = Writer(db, run_id, env_key, labels, on_batch=bars.advance,
                               on_notice=lambda line: progress.console.print(line, highlight=False, markup=False))
        summary = run_all(db, jobs, [t.job for t in tasks], executor, scorer.writer, owner=new_owner(),
                          timeout_s=settings.claim_timeout_s, on_round=bars.sync, on_done=scorer.score)
    _record_summary(db, out, summary, {k: v.name for k, v in labels.items()}, {t.job.task_key: t.name for t in tasks})
    out.results = [scorer.result(job.model_key, t.job.task_key) for job in jobs for t in tasks
                   if (job.model_key, t.job.task_key) not in summary.failed]


def _record_summary(db: Any, out: EvalResult, summary: Any, models: dict[str, str], tasks: dict[str, str]) -> None:
    """Failed pairs are marked in run_units and listed once each with their cause; counts for the rest."""
    for (model_key, task_key), failure in summary.failed.items():
        db.put_run_unit(out.run_id, model_key, task_key, "failed")
        out.failed.append(UnitFailure(model=models[model_key], task=tasks[task_key], cause=failure.cause,
                                      attempts=failure.attempts, user_error=failure.user_error))
    for model_key, failure in summary.failed_models.items():
        if not any(m == model_key for m, _ in summary.failed):
            out.failed.append(UnitFailure(model=models[model_key], task="(facts)", cause=failure.cause,
                                          attempts=failure.attempts, user_error=failure.user_error))
    out.succeeded, out.skipped = len(summary.succeeded), len(summary.skipped)


class PairScorer:
    """Scores each (model, task) once its items are all stored: as soon as its unit is done here, or at the
    end for units another process computed. Scoring needs no model."""

    def __init__(self, db: Any, run_id: str, jobs: list[Any], tasks: list[_BuiltTask], settings: EvalSettings,
                 costs: Any, peak: Any, loaded: Any):
        self.db, self.run_id, self.settings, self.costs, self.peak = db, run_id, settings, costs, peak
        self.loaded = loaded
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
        from beyondscale.evaluator.harness import lm_eval_scorer
        from beyondscale.evaluator.shared_answers import share_answers
        from beyondscale.models import ModelFacts
        from beyondscale.work.score import score_unit

        job, task, t = self.jobs[model_key], self.tasks[task_key], self.tasks[task_key].job
        facts = ModelFacts.from_dict(self.db.model_facts(model_key))
        scorer = lm_eval_scorer(self.loaded, task.planned, self.settings, keep=lambda results: share_answers(
            self.db, model_key, task.planned, results, self.run_id))
        aggregates, efficiency = score_unit(self.db, model_key, task_key, t.item_keys, scorer,
                                            facts=facts, costs=self.costs, peak=self.peak)
        computed = self.writer.computed[(model_key, task_key)]
        self.db.put_run_unit(self.run_id, model_key, task_key, "done", items_computed=computed)
        return PairResult.scored(job.ref.name, model_key, t.task, task_key, aggregates, len(t.items), efficiency,
                                 computed)


