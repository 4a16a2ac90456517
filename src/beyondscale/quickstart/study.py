"""`make run`: the whole study in one command, offline, as a pipeline of the public pieces.

A frozen `StudySpec` (spec.py) says what will run; each stage takes what it needs and returns a typed
result; each reuses what an earlier run left, so a second `make run` only reads:

0. plan     -- only with an explicit `--budget-minutes`: measure what each part costs here (`calibrate.py`) and
               grow the plan (`budget.py`); the real models are then evaluated first and the tokens take what the
               measured clock leaves.
1. corpus   -- the standard library's source files (`source.py`), split by file: a held-out test split
               (the bits-per-byte task) and a training pool; the three prose tasks (`build.py`).
2. curate   -- `lab.curate.run_curate` (what `beyondscale curate` runs) on the pool: the repetition rule,
               MinHash dedup and the quality scorer trained on the standard library's prose against the
               pool's raw files; it keeps the most prose-like share.
3. train    -- `lab.sweep.train_ladder` (what `beyondscale sweep` trains): one tokenizer, a dense ladder, an
               MoE (8 experts, top-2) at a middle rung and the curated arm at the same rung and tokens.
4. evaluate -- `evaluator.evaluate` on every trained model and the real models (and with `--quantize` their
               quantised variants, each a model of its own): finished (model, task) pairs are never recomputed.
5. probes   -- prediction depth (logit lens), counterfactual bias and the MoE's routing map (`probes.py`).
6. analyze / report -- `results.analyze` and `results.report`, with the study's conclusions (`conclude.py`)
               first in the verdict and its own sections (`sections.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from beyondscale.corpora.stdlib_prose import load_corpus
from beyondscale.evaluator import EvalSettings, evaluate
from beyondscale.lab.curate import CurateSettings, run_curate
from beyondscale.lab.curate.rules import DEFAULT_RULES
from beyondscale.lab.curate.scorer import train_scorer
from beyondscale.lab.data import read_corpus
from beyondscale.lab.sweep import Preset, TrainedLadder, train_ladder
from beyondscale.quickstart import probes, sections
from beyondscale.quickstart.budget import allocate, fill_tokens, load_plan, save_plan, split_line
from beyondscale.quickstart.build import build_quickstart_tasks
from beyondscale.quickstart.plan import StudyPlan
from beyondscale.quickstart.source import bpb_task_rows, split_sources, write_bpb_task, write_jsonl
from beyondscale.quickstart.spec import StudySpec
from beyondscale.quickstart.stages import CorpusStage, CurationStage, EvaluationStage, StudyResult

__all__ = ["run_study"]

LADDER_FAMILY, PRETRAINED_FAMILY = "trained ladder", "pretrained (PyPI)"
STDLIB_RULES = ["gopher_repetition"]  # the other FineWeb rules remove every source file (see README)


@contextmanager
def _timed(stages: dict[str, float], name: str, say: Callable[[str], None] | None) -> Iterator[None]:
    if say:
        say(f"[{name}] ...")
    start = time.perf_counter()
    yield
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - start


def build_corpus(spec: StudySpec) -> CorpusStage:
    """Raw training pool (JSONL), the held-out bits-per-byte task and the three prose tasks."""
    plan = spec.plan
    split = split_sources(plan.pool_bytes, plan.seed, spec.corpus)
    raw = spec.work / "corpus" / "raw_pool.jsonl"
    write_jsonl(raw, [{"text": d["text"]} for d in split.pool])
    rows = bpb_task_rows(split.test, plan.heldout_docs)
    tasks = {"heldout_source_bpb": write_bpb_task(spec.work / "tasks", rows, split.source)}
    tasks.update({path.stem: path for path in build_quickstart_tasks(spec.work / "tasks", seed=plan.seed,
                                                                      sizes=plan.qs_sizes)})
    summary = {"source": split.source, "pool_files": len(split.pool), "test_files": len(split.test),
               "pool_bytes": sum(len(d["text"].encode()) for d in split.pool), "heldout_docs": len(rows),
               "user_corpus": spec.corpus is not None}
    return CorpusStage(raw, tasks, summary)


def _scorer(spec: StudySpec, raw: Path) -> Path:
    """Quality scorer: the stdlib's prose (high) against the pool's raw files (low); retrained only on change."""
    prose = load_corpus()
    folder = spec.work / "curate"
    folder.mkdir(parents=True, exist_ok=True)
    path, stamp_path = folder / "scorer.safetensors", folder / "scorer.inputs.json"
    stamp = {"prose_sha256": prose.content_hash, "seed": spec.plan.seed,
             "low_sha256": hashlib.sha256(raw.read_bytes()).hexdigest()}
    if path.is_file() and stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
        return path
    low = [json.loads(line)["text"] for line in raw.read_text(encoding="utf-8").splitlines()]
    train_scorer([d.text for d in prose.documents], low, seed=spec.plan.seed).save(path)
    stamp_path.write_text(json.dumps(stamp), encoding="utf-8")
    return path


def curate_pool(spec: StudySpec, corpus: CorpusStage) -> CurationStage:
    rules = list(DEFAULT_RULES) if corpus.summary["user_corpus"] else STDLIB_RULES
    settings = CurateSettings(rules=rules, dedup="minhash", scorer=str(_scorer(spec, corpus.raw)),
                              keep_fraction=spec.plan.keep_fraction, workers=1, overwrite=True)
    out = spec.work / "curate" / "kept_corpus"
    doc = run_curate([str(corpus.raw)], str(out), settings)
    summary = {k: doc.get(k) for k in ("kept", "total", "kept_fraction", "reasons", "data_hash", "recipe_hash",
                                        "reused")}
    return CurationStage(out, {**summary, "rules": rules})


def ladder_preset(plan: StudyPlan) -> Preset:
    steps = plan.tokens // (plan.batch_size * plan.shapes[0].context_length)
    # Two intermediate evaluations on 4k tokens: at this size the default ten on 32k would cost more
    # than the training itself. The final validation loss always uses the whole validation set.
    return Preset(dense=plan.shapes, tokens=plan.tokens, vocab_size=plan.vocab_size, batch_size=plan.batch_size,
                  lr=plan.lr, variant_rung=plan.variant_rung, n_experts=plan.n_experts, top_k=plan.top_k,
                  eval_limit=None, note="make run study ladder",
                  train={"eval_every": max(1, steps // 2), "eval_tokens": 4096})


def ladder_key(preset: Preset, raw_hash: str, kept_hash: str) -> str:
    """What every rung's training depends on except its shape: the data, the tokenizer's size and the settings.
    Rungs are appended, never changed, so a plan with more rungs keeps the key and trains only the new ones."""
    settings = {k: v for k, v in dataclasses.asdict(preset).items() if k != "dense"}
    settings["context"] = preset.dense[0].context_length
    doc = json.dumps({"raw": raw_hash, "kept": kept_hash, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def train_study_ladder(spec: StudySpec, corpus: CorpusStage, curation: CurationStage) -> TrainedLadder:
    """The ladder in a folder named by its content (`ladder_key`): another plan or corpus trains beside it."""
    preset, raw, kept = ladder_preset(spec.plan), read_corpus(corpus.raw), read_corpus(curation.kept)
    folder = spec.work / "ladder" / ladder_key(preset, raw.data_hash, kept.data_hash)
    return train_ladder(preset, raw, kept, folder, store=spec.store, device=spec.device,
                        show_progress=spec.show_progress, skip_kinds=("distilled",))


def evaluate_models(spec: StudySpec, tasks: dict[str, Path], ladder: dict[str, str],
                    say: Callable[[str], None] | None = None) -> EvaluationStage:
    """The ladder and the real models on every task, each group tagged with its family; then each quantised
    variant of the real models (`--quantize`), evaluated as `beyondscale eval --quantize` does: a model of its
    own (key and name), paired with its float original on the same items."""
    real = dict(spec.real_models)
    groups = [(LADDER_FAMILY, list(ladder.values()), "none"),
              *((PRETRAINED_FAMILY, list(real.values()), q) for q in ("none", *spec.quantize))]
    keys: dict[str, str] = {}
    metrics: dict[str, dict[str, float | None]] = {}
    run_ids = []
    for family, specs, method in groups:
        if not specs:
            continue
        settings = EvalSettings(device=spec.device, batch_size=spec.batch_size, family=family, quantize=method)
        result = evaluate(specs, [str(p) for p in tasks.values()], store=spec.store, settings=settings,
                          show_progress=spec.show_progress, command="quickstart")
        run_ids.append(result.run_id)
        for failure in result.failed:
            (say or print)(f"evaluation failed: {failure.model} on {failure.task}: {failure.cause}")
        for pair in result.results:
            keys[pair.model] = pair.model_key
            metrics.setdefault(pair.model, {}).update({f"{pair.task}/{k}": v for k, v in pair.metrics.items()})
    return EvaluationStage({**ladder, **real}, keys, metrics, tuple(run_ids))


def fresh_start(work: Path) -> None:
    """--fresh: set the earlier study's folder aside (renamed, never deleted) so everything retrains."""
    if work.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        shutil.move(str(work), str(work.with_name(f"{work.name}.before-{stamp}")))


def plan_record(spec: StudySpec) -> Path:
    """Where a budgeted plan is kept: named by what the measurement starts from (the floor plan, budget and seed
    included, the device, corpus and models compared), so the same command reuses it and another measures again."""
    floor = {k: v for k, v in dataclasses.asdict(spec.plan).items() if k != "split"}
    doc = [floor, spec.device, str(spec.batch_size), spec.corpus, list(spec.real_models), list(spec.quantize)]
    key = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return spec.work / "budget" / f"{key}.json"


def budgeted_start(spec: StudySpec, stages: dict[str, float], started: float,
                   say: Callable[[str], None] | None) -> tuple[StudySpec, CorpusStage]:
    """--budget-minutes: measure, grow the plan, evaluate the real models, then give the tokens what is left.
    The same command run again reuses the plan it grew (--fresh measures again)."""
    from beyondscale.quickstart.calibrate import measure_costs

    record = plan_record(spec)  # named by the floor plan, before it grows
    kept = load_plan(record)
    if kept is not None and kept.split is not None:
        kept.split = dataclasses.replace(kept.split, reused=True)
        (say or print)(f"{split_line(kept.split)} ({record}; --fresh measures again)")
        spec = dataclasses.replace(spec, plan=kept)
        with _timed(stages, "corpus", say):
            return spec, build_corpus(spec)
    floor = spec.plan
    with _timed(stages, "plan", say):
        costs = measure_costs(floor, spec.device, spec.batch_size, dict(spec.real_models), spec.corpus, started)
        plan, split = allocate(floor, costs)
        spec = dataclasses.replace(spec, plan=dataclasses.replace(plan, split=split))
    with _timed(stages, "corpus", say):
        corpus = build_corpus(spec)
    clock = time.perf_counter()
    with _timed(stages, "evaluate", say):
        evaluate_models(spec, corpus.tasks, {}, say)
    plan, split = fill_tokens(spec.plan, floor, split, costs, time.perf_counter() - started, time.perf_counter() - clock)
    spec = dataclasses.replace(spec, plan=dataclasses.replace(plan, split=split))
    (say or print)(split_line(split))
    save_plan(record, spec.plan)
    with _timed(stages, "corpus", say):
        corpus = build_corpus(spec)  # the pool the final tokens need (the tasks are unchanged)
    return spec, corpus


def run_study(spec: StudySpec, say: Callable[[str], None] | None = None) -> StudyResult:
    """Every stage in order, each timed; returns what each produced, the analysis and the report's path."""
    started = time.perf_counter()
    if spec.fresh:
        fresh_start(spec.work)
    stages: dict[str, float] = {}
    if spec.plan.budgeted:
        spec, corpus = budgeted_start(spec, stages, started, say)
    else:
        with _timed(stages, "corpus", say):
            corpus = build_corpus(spec)
    with _timed(stages, "curate", say):
        curation = curate_pool(spec, corpus)
    with _timed(stages, "train", say):
        ladder = train_study_ladder(spec, corpus, curation)
    with _timed(stages, "evaluate", say):
        evaluation = evaluate_models(spec, corpus.tasks, ladder.model_specs(), say)
    with _timed(stages, "probes", say):
        probes.run_probes(spec, ladder, evaluation, corpus.tasks["heldout_source_bpb"])
    with _timed(stages, "analyze", say):
        analysis, frames, conclusions = sections.analyze_study(spec, corpus, ladder, evaluation)
        budget = None
        if spec.plan.split is not None:  # how the budget was split, and what it cost up to here
            budget = split_line(spec.plan.split, spent_s=time.perf_counter() - started) + " by the analysis"
            analysis = dataclasses.replace(analysis, notes=[*analysis.notes, budget])
    with _timed(stages, "report", say):
        study_sections = sections.study_sections(spec, corpus, curation, ladder, evaluation, conclusions, budget)
        path = sections.write_study_report(spec, analysis, frames, study_sections, budget)
    if spec.plan.split is not None and say:
        say(split_line(spec.plan.split, spent_s=time.perf_counter() - started) + " with the report")
    return StudyResult(spec, corpus, curation, ladder, evaluation, analysis, path, stages)
