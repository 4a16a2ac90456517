"""`import lm-eval`: runs made elsewhere (any lm-eval backend, any hardware) into the store, so `analyze`
and `report` treat them as runs made here.

The model is identified by what the run wrote (`model_args`, `model_name`, revision and sha where lm-eval
recorded them, the backend): the weights were not hashed here, and the facts say so. The task by the
run's dumped config (as `tasks/harness_identity` keys one: without where it was read from), lm-eval's
version and the prompt settings; documents by lm-eval's own `doc_hash`. Everything of one call is
written in one transaction: a refused input changes nothing stored.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from beyondscale.errors import UserError
from beyondscale.keys import content_key
from beyondscale.metrics.lm_eval_values import ROLLING_COUNTS, rolling_aggregate
from beyondscale.results import lm_eval_files as files
from beyondscale.store import Store
from beyondscale.store import imports as sql

#: model_args that change which weights answer (the rest, e.g. batch_size or device, only how fast).
WEIGHT_ARGS = ("pretrained", "model", "revision", "dtype", "load_in_4bit", "load_in_8bit", "quantization",
               "peft", "delta", "gguf_file", "subfolder", "autogptq", "gptqmodel", "bnb_4bit_quant_type",
               "bnb_4bit_compute_dtype", "tokenizer")
IDENTITY_SOURCE = "lm-eval run: model_args"
TOKENIZER_FIELDS = ("tokenizer_pad_token", "tokenizer_eos_token", "tokenizer_bos_token", "eot_token_id", "max_length",
                    "chat_template_sha", "transformers_version")


@dataclass(frozen=True)
class ImportedModel:
    key: str
    name: str
    ref: dict
    identity: str  # content key of what the run says about the model (the facts hold it: lm_eval_identity)
    facts: dict


@dataclass
class ImportSummary:
    """What one import added: runs, models, (model, task) units and new per-document rows."""

    store: Path
    runs_new: int = 0
    models: dict[str, str] = field(default_factory=dict)  # key -> name
    units: list[dict] = field(default_factory=list)
    items_new: int = 0
    notes: list[str] = field(default_factory=list)


def _model_args(raw: Any) -> dict:
    if isinstance(raw, dict):
        return dict(raw)
    from lm_eval.utils import simple_parse_args_string

    return simple_parse_args_string(raw if isinstance(raw, str) else None)


def imported_model(data: dict, name: str | None) -> ImportedModel:
    """The run's model: keyed by its weight-defining model_args, revision, sha and backend."""
    config = data.get("config") or {}
    args = _model_args(config.get("model_args"))
    label = str(args.get("pretrained") or args.get("model") or data.get("model_name") or config.get("model"))
    backend = data.get("model_source") or config.get("model")
    revision = config.get("model_revision") or data.get("model_revision")
    sha = config.get("model_sha") or data.get("model_sha") or None
    weights = {k: args[k] for k in WEIGHT_ARGS if k in args}
    key = content_key({"kind": "lm-eval import", "backend": backend, "model_args": weights, "model": label,
                       "revision": revision, "sha": sha})
    identity = {"identity_source": IDENTITY_SOURCE, "weights_hashed": False, "backend": backend,
                "model_name": data.get("model_name"), "model_name_sanitized": data.get("model_name_sanitized"),
                "model_args": {k: str(v) for k, v in args.items()}, "model_revision": revision, "model_sha": sha,
                **{k: data.get(k) for k in TOKENIZER_FIELDS}}
    n_params = config.get("model_num_parameters")
    has_params = isinstance(n_params, int) and n_params > 0
    dtype = config.get("model_dtype")
    facts = {"params_total": n_params if has_params else None,
             "params_source": "lm-eval results: model_num_parameters" if has_params
             else "not in the lm-eval results (model_num_parameters absent)",
             "dtype": str(dtype).removeprefix("torch.") if dtype else args.get("dtype"),
             "identity_source": IDENTITY_SOURCE, "weights_hashed": False, "lm_eval_identity": identity,
             "note": "imported from an lm-eval run: weights were not hashed here; time, memory and energy "
                     "were not measured here"}
    ref = {"spec": label, "source": "lm-eval import"}
    return ImportedModel(key, name or Path(label.rstrip("/")).name or label, ref, content_key(identity), facts)


def _stable_config(config: dict, model_args: dict) -> dict:
    """The dumped config as harness_identity keys a task here, function addresses removed, and without the
    model_args that lm-eval's command line copies into every task's metadata (they name the model)."""
    from beyondscale.tasks.harness_identity import config_for_key

    config = copy.deepcopy(config)
    meta = config.get("metadata")
    if isinstance(meta, dict):
        for key, value in model_args.items():
            if key in meta and str(meta[key]) == str(value):
                del meta[key]
    stable = config_for_key(SimpleNamespace(dump_config=lambda: config))
    return json.loads(re.sub(r" at 0x[0-9a-fA-F]+", "", json.dumps(stable, sort_keys=True)))


def task_identity(data: dict, task: str) -> tuple[str, dict, dict]:
    """(task_key, spec, eval_config) of one task of the run."""
    run_config = data.get("config") or {}
    config = _stable_config(data["configs"][task], _model_args(run_config.get("model_args")))
    n_shot = (data.get("n-shot") or {}).get(task, config.get("num_fewshot"))
    prompt = {"num_fewshot": n_shot, "chat_template_sha": data.get("chat_template_sha"),
              "system_instruction_sha": data.get("system_instruction_sha"),
              "fewshot_as_multiturn": data.get("fewshot_as_multiturn"),
              "fewshot_seed": run_config.get("fewshot_seed") if n_shot else None,
              "gen_kwargs": run_config.get("gen_kwargs") or None}
    version = data.get("lm_eval_version")
    key = content_key({"kind": "lm-eval import", "config": config, "lm_eval": version, "prompt": prompt})
    eval_config = {"source": "lm-eval import", "lm_eval_version": version, **prompt,
                   "limit": run_config.get("limit")}
    return key, config, eval_config


def _prediction(row: dict, output_type: str) -> Any:
    """What the model answered, as lm-eval's filtered response shows it."""
    resps = row.get("filtered_resps")
    try:
        if output_type == "multiple_choice" and resps:
            lls = [float(r[0] if isinstance(r, list) else r) for r in resps]
            return lls.index(max(lls))
        if isinstance(resps, list) and resps:
            return resps[0]
    except (TypeError, ValueError):
        return None
    return resps


def _correct(values: dict[str, float]) -> float | None:
    for name in ("acc", "exact_match"):
        if values.get(name) in (0.0, 1.0):
            return values[name]
    return None


def score_rows(samples: files.TaskSamples, output_type: str) -> list[dict]:
    """One per-item row per document: prediction, target, correct and every numeric per-document metric."""
    return [{"doc_id": doc_id, "pred": _prediction(samples.first_row[doc_id], output_type),
             "gold": samples.first_row[doc_id].get("target"), "correct": _correct(values), "values": values}
            for doc_id, values in sorted(samples.values.items())]


def item_rows(samples: files.TaskSamples, results_sha: str) -> list[tuple[str, int, dict, dict]]:
    """items rows keyed by doc_hash: the request's hashes and the raw responses lm-eval logged."""
    out = []
    for doc_id, doc_hash in sorted(samples.doc_hash.items()):
        row = samples.first_row[doc_id]
        request = {"source": "lm-eval import", "doc_hash": doc_hash, "prompt_hash": row.get("prompt_hash"),
                   "target_hash": row.get("target_hash"), "results_sha256": results_sha}
        out.append((doc_hash, doc_id, request, {"resps": row.get("resps"), "filtered_resps": row.get("filtered_resps")}))
    return out


@dataclass
class UnitScores:
    """A (model, task) unit's score set as imported: per-document rows (none without samples) and aggregates."""

    rows: list[dict]
    aggregates: dict[str, tuple[float | None, float | None]]
    n_docs: int
    means: set[str]


def _averages_to(rows: list[dict], metric: str, value: float | None) -> bool:
    per_doc = [r["values"].get(metric) for r in rows]
    if value is None or not per_doc or None in per_doc:
        return False
    return abs(sum(per_doc) / len(per_doc) - value) <= files.MEAN_TOLERANCE * max(1.0, abs(value))


def merge_scores(unit: UnitScores, stored_rows: dict[int, dict], stored_metrics: dict[str, tuple],
                 where: str) -> tuple[dict[str, tuple], list[dict], list[str]] | None:
    """The unit's score set after this import, or None to leave the stored one as it is.

    The same documents as stored (or none stored): lm-eval's own aggregates. More documents than either
    side: the union by doc_id (a stored row wins), each metric that both sides average per document
    recomputed as a mean with lm-eval's stderr, a rolling task's perplexities and bits_per_byte from the
    summed loglikelihoods and counts (as lm-eval aggregates them); any other metric is dropped, with a note.
    """
    if not unit.rows:
        if stored_rows:
            return None
        return {m: (v, s, unit.n_docs) for m, (v, s) in unit.aggregates.items()}, [], [
            f"{where}: no samples file, aggregates only: paired tests are impossible for it"]
    union = {**{r["doc_id"]: r for r in unit.rows}, **stored_rows}
    if set(union) == {r["doc_id"] for r in unit.rows}:
        return {m: (v, s, len(union)) for m, (v, s) in unit.aggregates.items()}, list(union.values()), []
    merged, notes, rows = {}, [], [union[d] for d in sorted(union)]
    for metric in sorted(set(unit.aggregates) | set(stored_metrics)):
        value = _merged_metric(metric, unit, stored_rows, stored_metrics, rows)
        if value is not None:
            merged[metric] = value
        else:
            notes.append(f"{where}: `{metric}` is not a mean of per-document values; not recomputed over the "
                         f"{len(rows)} merged documents, dropped")
    return merged, rows, notes


def _merged_metric(metric: str, unit: UnitScores, stored_rows: dict[int, dict], stored_metrics: dict[str, tuple],
                   rows: list[dict]) -> tuple | None:
    """(value, stderr, n) of `metric` over the merged documents, or None when it cannot be recomputed."""
    from beyondscale.metrics.stats import mean_stderr

    if metric in ROLLING_COUNTS:
        count = ROLLING_COUNTS[metric]
        pairs = [(r["values"].get("logprob"), r["values"].get(count)) for r in rows]
        if pairs and all(ll is not None and n for ll, n in pairs):
            return rolling_aggregate(metric, sum(p[0] for p in pairs), sum(p[1] for p in pairs)), None, len(rows)
        return None
    ours = metric.split(",")[0] in unit.means and _averages_to(unit.rows, metric,
                                                              unit.aggregates.get(metric, (None,))[0])
    theirs = metric not in stored_metrics or _averages_to(list(stored_rows.values()), metric,
                                                          stored_metrics[metric][0])
    values = [r["values"].get(metric) for r in rows]
    if ours and theirs and None not in values:
        return sum(values) / len(values), mean_stderr(values), len(values)
    return None


@dataclass
class ImportedUnit:
    task: str
    key: str
    spec: dict
    eval_config: dict
    scores: UnitScores
    items: list[tuple[str, int, dict, dict]]
    samples: Path | None


@dataclass
class ImportedRun:
    files: files.RunFiles
    data: dict
    model: ImportedModel
    results_sha: str
    units: list[ImportedUnit]
    notes: list[str]


def _imported_unit(run: files.RunFiles, data: dict, task: str, results_sha: str) -> ImportedUnit:
    key, spec, eval_config = task_identity(data, task)
    output_type = str(spec.get("output_type") or "")
    aggregates = files.aggregates(data["results"].get(task) or {})
    effective = ((data.get("n-samples") or {}).get(task) or {}).get("effective")
    means = files.mean_metrics(data["configs"][task])
    path = run.samples.get(task)
    if path is None:
        return ImportedUnit(task, key, spec, eval_config, UnitScores([], aggregates, int(effective or 0), means),
                            [], None)
    samples = files.read_samples(path)
    files.check_samples(run.results, data, task, samples)
    scores = UnitScores(score_rows(samples, output_type), aggregates, len(samples.doc_hash), means)
    return ImportedUnit(task, key, spec, eval_config, scores, item_rows(samples, results_sha), path)


def read_run(run: files.RunFiles, name: str | None) -> ImportedRun:
    """Everything one results file (and its samples) says, checked, before anything is written."""
    data = files.read_json(run.results)
    sha = files.sha256_file(run.results)
    units = [_imported_unit(run, data, task, sha) for task in sorted(data["configs"])]
    groups = sorted(set(data["results"]) - set(data["configs"]))
    notes = [f"{run.results.name}: group {g} is an aggregate of its tasks; its tasks are imported, not it"
             for g in groups]
    return ImportedRun(run, data, imported_model(data, name), sha, units, notes)


def _check_documents(store: Store, unit: ImportedUnit) -> None:
    """Refuse documents whose doc_id the store already gives another content for this task."""
    known = sql.doc_hashes_by_id(store, unit.key)
    for doc_hash, doc_id, _, _ in unit.items:
        if known.get(doc_id, doc_hash) != doc_hash:
            raise UserError(f"{unit.samples}: document {doc_id} of {unit.task} has doc_hash {doc_hash[:12]}, but the "
                            f"store holds {known[doc_id][:12]} for it; not the same documents")


def _write_unit(store: Store, run_id: str, run: ImportedRun, unit: ImportedUnit, summary: ImportSummary) -> None:
    model = run.model
    where = f"{model.name} / {unit.task}"
    sql.put_import_task(store, unit.key, unit.task, str(unit.spec.get("output_type") or ""), unit.spec,
                        unit.eval_config)
    _check_documents(store, unit)
    new = sql.put_import_items(store, run_id, model.key, unit.key, unit.items)
    merged = merge_scores(unit.scores, *sql.unit_scores(store, model.key, unit.key), where)
    if merged is None:
        summary.notes.append(f"{where}: no samples file; the stored per-document scores are kept")
    else:
        aggregates, rows, notes = merged
        sql.replace_unit_scores(store, model.key, unit.key, aggregates, rows)
        summary.notes.extend(notes)
    build = {"results": str(run.files.results), "samples": None if unit.samples is None else str(unit.samples),
             "n_docs": unit.scores.n_docs}
    sql.put_import_unit(store, run_id, model.key, unit.key, build, new)
    summary.items_new += new
    summary.units.append({"model": model.name, "model_key": model.key, "task": unit.task, "task_key": unit.key,
                          "n_docs": unit.scores.n_docs, "per_document": bool(unit.items), "items_new": new})


def _environment(data: dict) -> dict:
    keys = ("lm_eval_version", "transformers_version", "git_hash", "date", "total_evaluation_time_seconds",
            "pretty_env_info", "config")
    return {"source": "lm-eval run (not measured here)", **{k: data.get(k) for k in keys}}


def _write_run(store: Store, run: ImportedRun, name: str | None, summary: ImportSummary) -> None:
    run_id = f"lm-eval-{run.results_sha[:16]}"
    args = {"results": str(run.files.results), "name": name, "results_sha256": run.results_sha}
    summary.runs_new += sql.put_import_run(store, run_id, args, _environment(run.data))
    sql.put_import_model(store, run.model.key, run.model.name, run.model.ref, run.model.identity, run.model.facts)
    summary.models[run.model.key] = run.model.name
    summary.notes.extend(run.notes)
    if run.model.facts["params_total"] is None:
        summary.notes.append(f"{run.model.name}: {run.files.results.name} records no model_num_parameters; "
                             "returns per doubling of size need it")
    for unit in run.units:
        _write_unit(store, run_id, run, unit, summary)


def import_lm_eval(path: str | Path, *, store: str | Path, name: str | None = None) -> ImportSummary:
    """Import every lm-eval run under `path` (results_*.json, samples_*.jsonl) into `store`, in one transaction."""
    folder = Path(path)
    runs = [read_run(run, name) for run in files.find_runs(folder)]
    n_models = len({run.model.key for run in runs})
    if name and n_models > 1:
        raise UserError(f"--name {name}: {folder} holds runs of {n_models} models; --name labels one")
    with Store(store) as db:
        summary = ImportSummary(db.path)
        with db.transaction():
            for run in runs:
                _write_run(db, run, name, summary)
    summary.notes = list(dict.fromkeys(summary.notes))
    return summary
