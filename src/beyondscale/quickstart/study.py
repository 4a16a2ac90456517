"""`make run`: the whole study in one command, offline, as a preset of the public pieces.

Stages (each timed; each reuses what an earlier run left, so a second `make run` only reads):

1. corpus   -- the standard library's source files (`source.py`), split by file: a held-out test
               split (the bits-per-byte task) and a training pool; the three prose tasks of the
               first quickstart (`build.py`), sized by the plan.
2. curate   -- `beyondscale curate` of the same pool: the repetition rule, MinHash dedup and the
               quality scorer trained on the standard library's prose (docstrings and help topics:
               `corpus.py`) against the pool's raw files; it keeps the most prose-like share.
3. train    -- `sweep`'s pieces: one shared validation set (every 10th pool file, removed from both
               arms), one tokenizer, a dense ladder, an MoE (8 experts, top-2) at a middle rung and
               the curated arm at the same rung and tokens. Finished runs are read back.
4. evaluate -- every trained model and the two real models through `evaluator.evaluate` (the store's
               unit of work: finished (model, task) pairs are never recomputed); with `--quantize`,
               the real models' quantised variants too (each a model of its own, not probed).
5. probes   -- prediction depth (logit lens), counterfactual bias and the MoE's routing map; a
               result already in the store for the same model and input is not recomputed.
6. analyze / report -- the store's analysis plus this study's sections and verdict
               (`findings.py`: worded from this run's numbers).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beyondscale.quickstart.plan import StudyPlan

__all__ = ["Study", "run_study"]

LADDER_FAMILY, PRETRAINED_FAMILY = "trained ladder", "pretrained (PyPI)"
STDLIB_RULES = ["gopher_repetition"]  # the other FineWeb rules remove every source file (see README)


@dataclass
class Study:
    """What the stages produce; `findings.py` and `sections.py` read it."""

    plan: StudyPlan
    work: Path
    store: str
    device: str = "cpu"
    stages: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, Path] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)
    curation: dict[str, Any] = field(default_factory=dict)
    rungs: list[Any] = field(default_factory=list)
    records: dict[str, dict] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # name -> model spec ("name=path")
    keys: dict[str, str] = field(default_factory=dict)  # name -> model_key
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # name -> "task/metric" -> value
    run_ids: list[str] = field(default_factory=list)
    findings: Any = None  # findings.StudyFindings, once analysed

    @contextmanager
    def stage(self, name: str, say: Callable[[str], None] | None = None):
        if say:
            say(f"[{name}] ...")
        t0 = time.perf_counter()
        yield
        self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- corpus


def build_corpus(study: Study, corpus: str | None) -> Path:
    """Raw training pool (JSONL), the held-out bits-per-byte task and the three prose tasks."""
    from beyondscale.quickstart.build import build_quickstart_tasks
    from beyondscale.quickstart.source import bpb_task_rows, split_sources, write_bpb_task, write_jsonl

    plan = study.plan
    split = split_sources(plan.pool_bytes, plan.seed, corpus)
    raw = study.work / "corpus" / "raw_pool.jsonl"
    write_jsonl(raw, [{"text": d["text"]} for d in split.pool])
    rows = bpb_task_rows(split.test, plan.heldout_docs)
    study.tasks["heldout_source_bpb"] = write_bpb_task(study.work / "tasks", rows, split.source)
    for path in build_quickstart_tasks(study.work / "tasks", seed=plan.seed, sizes=plan.qs_sizes):
        study.tasks[path.stem] = path
    study.corpus = {"source": split.source, "pool_files": len(split.pool), "test_files": len(split.test),
                    "pool_bytes": sum(len(d["text"].encode()) for d in split.pool), "heldout_docs": len(rows),
                    "user_corpus": corpus is not None}
    return raw


# --------------------------------------------------------------------------------------------- curate


def _scorer(study: Study, raw: Path) -> Path:
    """Quality scorer: the stdlib's prose (high) against the pool's raw files (low); retrained only on change."""
    import hashlib

    from beyondscale.lab.curate.scorer import train_scorer
    from beyondscale.quickstart.corpus import load_corpus

    prose = load_corpus()
    folder = study.work / "curate"
    folder.mkdir(parents=True, exist_ok=True)
    path, stamp_path = folder / "scorer.safetensors", folder / "scorer.inputs.json"
    stamp = {"prose_sha256": prose.content_hash, "seed": study.plan.seed,
             "low_sha256": hashlib.sha256(raw.read_bytes()).hexdigest()}
    if path.is_file() and stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
        return path
    low = [json.loads(line)["text"] for line in raw.read_text(encoding="utf-8").splitlines()]
    train_scorer([d.text for d in prose.documents], low, seed=study.plan.seed).save(path)
    stamp_path.write_text(json.dumps(stamp), encoding="utf-8")
    return path


def curate_pool(study: Study, raw: Path) -> Path:
    from beyondscale.lab.curate import CurateSettings, run_curate
    from beyondscale.lab.curate.rules import DEFAULT_RULES

    rules = list(DEFAULT_RULES) if study.corpus["user_corpus"] else STDLIB_RULES
    settings = CurateSettings(rules=rules, dedup="minhash", scorer=str(_scorer(study, raw)),
                              keep_fraction=study.plan.keep_fraction, workers=1, overwrite=True)
    out = study.work / "curate" / "kept_corpus"
    doc = run_curate([str(raw)], str(out), settings)
    study.curation = {k: doc.get(k) for k in ("kept", "total", "kept_fraction", "reasons", "data_hash",
                                               "recipe_hash", "reused")}
    study.curation["rules"] = rules
    return out


# ---------------------------------------------------------------------------------------------- train


def _preset(plan: StudyPlan) -> Any:
    from beyondscale.lab.sweep import Preset

    steps = plan.tokens // (plan.batch_size * plan.shapes[0].context_length)
    # Two intermediate evaluations on 4k tokens: at this size the default ten on 32k would cost more
    # than the training itself. The final validation loss always uses the whole validation set.
    return Preset(dense=plan.shapes, tokens=plan.tokens, vocab_size=plan.vocab_size, batch_size=plan.batch_size,
                  lr=plan.lr, variant_rung=plan.variant_rung, n_experts=plan.n_experts, top_k=plan.top_k,
                  eval_limit=None, note="make run study ladder",
                  train={"eval_every": max(1, steps // 2), "eval_tokens": 4096})


def train_ladder(study: Study, raw: Path, curated: Path, show_progress: bool) -> None:
    from beyondscale.lab.data import read_corpus
    from beyondscale.lab.sweep import plan_rungs, prepare_data, train_rungs

    preset = _preset(study.plan)
    folder = study.work / "ladder"
    paths = prepare_data(read_corpus(raw), read_corpus(curated), folder / "data")
    study.rungs = [r for r in plan_rungs(preset, has_curated=True) if r.kind != "distilled"]
    study.records = train_rungs(preset, study.rungs, paths, folder, store=study.store, device=study.device,
                                show_progress=show_progress)
    for rung in study.rungs:
        study.models[rung.name] = f"{rung.name}={study.records[rung.name]['out']}"


# ------------------------------------------------------------------------------------------- evaluate


def packaged_models() -> dict[str, str]:
    """The two real models, as model specs (`name=path/to/file.gguf`)."""
    from beyondscale.quickstart.packaged import PACKAGED_MODELS

    return {name: f"{name}={entry.path()}" for name, entry in PACKAGED_MODELS.items()}


def quantize_variants(value: str | None) -> tuple[str, ...]:
    """`--quantize int8`, `int8,int4` or `none` (the default: no variants) -> the methods, checked up front."""
    from beyondscale.models.quantize import check_method

    methods = [check_method(v.strip()) for v in (value or "none").split(",") if v.strip()]
    return tuple(dict.fromkeys(m for m in methods if m != "none"))


def evaluate_all(study: Study, real: dict[str, str], device: str, batch_size: int | str, show_progress: bool,
                 say: Callable[[str], None] | None = None, quantize: tuple[str, ...] = ()) -> None:
    """The ladder and the real models on every task, each group tagged with its family; then each quantised
    variant of the real models (`--quantize`), evaluated as `beyondscale eval --quantize` does: a model of its
    own (key and name), paired with its float original on the same items."""
    from beyondscale.evaluator import EvalSettings, evaluate

    tasks = [str(p) for p in study.tasks.values()]
    ladder = [study.models[r.name] for r in study.rungs]
    study.models.update(real)
    groups = [(LADDER_FAMILY, ladder, "none"), *((PRETRAINED_FAMILY, list(real.values()), q)
                                                 for q in ("none", *quantize))]
    for family, specs, method in groups:
        if not specs:
            continue
        settings = EvalSettings(device=device, batch_size=batch_size, family=family, quantize=method)
        result = evaluate(specs, tasks, store=study.store, settings=settings, show_progress=show_progress,
                              command="quickstart")
        study.run_ids.append(result.run_id)
        for failure in result.failed:
            (say or print)(f"evaluation failed: {failure.model} on {failure.task}: {failure.cause}")
        for pair in result.results:
            study.keys[pair.model] = pair.model_key
            study.metrics.setdefault(pair.model, {}).update({f"{pair.task}/{k}": v for k, v in pair.metrics.items()})


def fresh_start(work: Path) -> None:
    """--fresh: set the earlier study's folder aside (renamed, never deleted) so everything retrains."""
    if work.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        shutil.move(str(work), str(work.with_name(f"{work.name}.before-{stamp}")))


def run_study(*, store: str, work_dir: Path, out: Path, plan: StudyPlan, corpus: str | None = None,
              fresh: bool = False, device: str = "auto", batch_size: int | str = "auto",
              show_progress: bool = True, say: Callable[[str], None] | None = None,
              real_models: dict[str, str] | None = None, quantize: str | None = None) -> tuple[Study, Any, Path]:
    """All stages; returns the study, the store's analysis and the report's path.

    `real_models`: name -> model spec of the pretrained models set against the ladder (default: the
    two PyPI-packaged ones; tests pass tiny local models). `quantize` ("int8", "int8,int4", "none") adds
    the real models' quantised variants to the study."""
    from beyondscale.models.load import resolve_device
    from beyondscale.quickstart import probes, sections

    variants = quantize_variants(quantize)  # a mistake stops here, before any stage
    work = Path(work_dir).expanduser().resolve()
    if fresh:
        fresh_start(work)
    study = Study(plan=plan, work=work, store=str(store), device=resolve_device(device))
    with study.stage("corpus", say):
        raw = build_corpus(study, corpus)
    with study.stage("curate", say):
        curated = curate_pool(study, raw)
    with study.stage("train", say):
        train_ladder(study, raw, curated, show_progress)
    with study.stage("evaluate", say):
        evaluate_all(study, real_models or packaged_models(), device, batch_size, show_progress, say, variants)
    with study.stage("probes", say):
        probes.run_probes(study)
    with study.stage("analyze", say):
        analysis, frames = sections.analyze_study(study)
    with study.stage("report", say):
        path = sections.write_study_report(study, analysis, frames, out)
    return study, analysis, path
