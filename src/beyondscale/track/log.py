"""What beyondscale logs to a tracker, from its own result objects.

Evaluation (`log_evaluation`): one run per model, named by the model, grouped by the beyondscale run id
(the study). Params: the model's name, content key (`model_key`, its identity), stored facts (parameters,
FLOPs per token, dtype, quantisation, ...), each task's key and item count, and every efficiency source.
Metrics: `TASK/METRIC` and `TASK/METRIC_stderr` for every aggregate, and the efficiency figures
`TASK/FIGURE`. A figure that rests on an estimate says so in its name: energy figures end in `_measured`
or `_estimated` (`energy_estimated`); carbon, cost and FLOP figures end in their source's kind (`_estimated`
when the source starts with "estimate", else e.g. `_user`, `_counted`), so a chart never mixes a
measurement with an estimate. Time, tokens and memory are measured and carry no suffix.

Training (`log_training`): one run per training record: the recipe as params, the loss curve step by
step (`train/loss`, `train/lr`, `train/tokens`, `train/flops`, `val/loss`), final figures at the last
step, the record JSON and model card as artifacts. Report (`log_report`): a run named "report" in the
group, with the report file as an artifact and the store's path as a param.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.track.base import Tracker, finite_metrics, first_line

ENERGY_FIGURES = ("energy_j", "joules_per_token", "joules_per_correct")
SOURCED_FIGURES = {  # figure -> the key naming its source
    "gco2e": "carbon_source", "gco2e_per_1k_tokens": "carbon_source",
    "usd": "cost_source", "usd_per_1m_tokens": "cost_source", "usd_per_correct": "cost_source",
    "achieved_flops": "flops_source", "mfu": "flops_source",
}
#: settings and constants of the measurement: params, not charted metrics
PARAM_FIGURES = ("grid_gco2_per_kwh", "pue", "usd_per_hour", "peak_flops", "peak_flops_probe", "peak_flops_spec",
                 "flops_per_token", "n_items", "n_correct", "energy_estimated")
CURVE_EXCLUDED = ("loss_curve", "val_curve", "expert_load", "moe_layers")
FINAL_TRAINING = ("val_loss", "train_loss", "generalisation_gap", "wall_s", "tokens_per_s", "mfu")


def _kind(source: Any) -> str:
    text = str(source or "unknown")
    return "estimated" if text.startswith("estimate") else text.split(":")[0].split(" ")[0] or "unknown"


def labelled_efficiency(eff: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, params) of one unit's efficiency figures, estimates labelled in the metric's name."""
    energy = "estimated" if eff.get("energy_estimated") or _kind(eff.get("energy_source")) == "estimated" \
        else "measured"
    metrics: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, value in eff.items():
        if key.endswith("_source") or key == "energy_scope" or key in PARAM_FIGURES or isinstance(value, str):
            params[key] = value
        elif key in ENERGY_FIGURES:
            metrics[f"{key}_{energy}"] = value
        elif key in SOURCED_FIGURES:
            metrics[f"{key}_{_kind(eff.get(SOURCED_FIGURES[key]))}"] = value
        else:
            metrics[key] = value
    return finite_metrics(metrics), {k: v for k, v in params.items() if v is not None}


def _each(trackers: Sequence[Tracker], what: str, action: Callable[[Tracker], None]) -> None:
    """Run `action` on every tracker; failures are gathered into one line after all were tried."""
    failed = []
    for tracker in trackers:
        try:
            action(tracker)
        except Exception as err:  # noqa: BLE001 - one tracker failing must not stop the others
            failed.append(f"{tracker.name}: {first_line(err)}")
            try:
                tracker.end()
            except Exception as end_err:  # noqa: BLE001
                failed.append(f"{tracker.name} (ending the run): {first_line(end_err)}")
    if failed:
        raise UserError(f"--tracker: logging {what} failed ({'; '.join(failed)}); the results are in the store")


def _stored_facts(store: str | Path, keys: Sequence[str]) -> dict[str, dict]:
    from beyondscale.store import Store

    if not Path(store).is_file():
        return {}
    db = Store(store, create=False)
    try:
        return {k: db.model_facts(k) or {} for k in keys}
    finally:
        db.close()


def evaluation_runs(result: Any, facts: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One {name, params, metrics} per model of an `EvalResult`, in the order the models were evaluated."""
    by_model: dict[str, list[Any]] = {}
    for pair in result.results:
        by_model.setdefault(pair.model_key, []).append(pair)
    if facts is None:
        facts = _stored_facts(result.store, list(by_model))
    runs = []
    for key, pairs in by_model.items():
        params: dict[str, Any] = {"model": pairs[0].model, "model_key": key, "beyondscale_run_id": result.run_id,
                                  "store": str(Path(result.store).resolve()), **dict(facts.get(key) or {})}
        metrics: dict[str, Any] = {}
        for p in pairs:
            eff_metrics, eff_params = labelled_efficiency(p.efficiency or {})
            params.update({f"{p.task}/task_key": p.task_key, f"{p.task}/n_items": p.n_items,
                           **{f"{p.task}/{k}": v for k, v in eff_params.items()}})
            metrics.update({f"{p.task}/{m}": v for m, v in p.metrics.items()})
            metrics.update({f"{p.task}/{m}": v for m, v in eff_metrics.items()})
        runs.append({"name": pairs[0].model, "params": params, "metrics": finite_metrics(metrics)})
    return runs


def log_evaluation(trackers: Sequence[Tracker], result: Any, facts: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> None:
    """One run per model of `result` (an `EvalResult`), grouped by its run id; `facts`: {model_key: facts},
    read from the result's store when None."""
    if not trackers:
        return
    runs = evaluation_runs(result, facts)

    def log(tracker: Tracker) -> None:
        for run in runs:
            tracker.start_run(run["name"], result.run_id, run["params"], kind="eval")
            tracker.log_metrics(run["metrics"])
            tracker.end()

    _each(trackers, "the evaluation", log)


def stored_result(store: str | Path, group: str, models: Sequence[str] | None = None) -> Any:
    """An `EvalResult`-shaped view of the store's current scores (for `sweep` and `quickstart`, which evaluate
    inside and return no `EvalResult`): per (model, task) its metrics with stderr, item count and efficiency."""
    from types import SimpleNamespace

    from beyondscale.store import Store, load_frames

    db = Store(store, create=False)
    try:
        frames = load_frames(db, models=list(models) if models else None, with_items=False)
    finally:
        db.close()
    eff = {(r["model_key"], r["task_key"]): r for r in frames.efficiency.to_dict(orient="records")}
    pairs = []
    for (model_key, task_key), rows in frames.scores.groupby(["model_key", "task_key"], sort=False):
        first = rows.iloc[0]
        metrics = {**dict(zip(rows["metric"], rows["value"], strict=True)),
                   **{f"{m}_stderr": v for m, v in zip(rows["metric"], rows["stderr"], strict=True)}}
        figures = {k: v for k, v in eff.get((model_key, task_key), {}).items()
                   if k not in ("model_key", "model", "task_key", "task")}
        pairs.append(SimpleNamespace(model=first["model"], model_key=model_key, task=first["task"], task_key=task_key,
                                     metrics=metrics, n_items=int(first["n_items"]), efficiency=figures))
    return SimpleNamespace(run_id=group, store=str(store), results=pairs)


def _load_record(record: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    from beyondscale.models.ref import LAB_MARKER

    if isinstance(record, Mapping):
        return dict(record)
    path = Path(record)
    path = path / LAB_MARKER if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{record}: no training record (expected {LAB_MARKER} from `beyondscale train`)")
    return json.loads(path.read_text(encoding="utf-8"))


def curve_steps(record: Mapping[str, Any]) -> list[tuple[int, dict[str, float]]]:
    """The loss curves merged by step, ascending (W&B wants steps in order): train/* and val/loss."""
    steps: dict[int, dict[str, Any]] = {}
    for point in record.get("loss_curve") or []:
        steps.setdefault(int(point["step"]), {}).update(
            {f"train/{k}": point.get(k) for k in ("loss", "lr", "tokens", "flops")})
    for point in record.get("val_curve") or []:
        steps.setdefault(int(point["step"]), {})["val/loss"] = point.get("loss")
    return [(step, finite_metrics(values)) for step, values in sorted(steps.items())]


def training_run(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """(params, final metrics) of a training record; energy labelled measured or estimated."""
    params = {k: v for k, v in record.items() if k not in CURVE_EXCLUDED and k not in FINAL_TRAINING}
    energy = "estimated" if record.get("energy_estimated") else "measured"
    final = {**{k: record.get(k) for k in FINAL_TRAINING}, f"energy_j_{energy}": record.get("energy_j")}
    params.pop("energy_j", None)
    return params, finite_metrics(final)


def log_training(trackers: Sequence[Tracker], record: Mapping[str, Any] | str | Path, *, group: str | None = None,
                 name: str | None = None) -> None:
    """One run for a training record (the dict `train` returns, or a lab folder / its JSON): recipe as params,
    loss curve step by step, final figures at the last step, record and model card as artifacts."""
    if not trackers:
        return
    rec = _load_record(record)
    out = Path(str(rec.get("out") or "."))
    name = name or out.name or str(rec.get("model_key") or "training")
    group = group or out.parent.name or None
    params, final = training_run(rec)
    steps = curve_steps(rec)
    last = steps[-1][0] if steps else int(rec.get("steps") or 0)
    artifacts = [p for p in (out / "beyondscale_lab.json", out / "README.md") if p.is_file()]

    def log(tracker: Tracker) -> None:
        tracker.start_run(name, group, params, kind="train")
        for step, values in steps:
            tracker.log_metrics(values, step=step)
        tracker.log_metrics(final, step=last)
        for path in artifacts:
            tracker.log_artifact(path)
        tracker.end()

    _each(trackers, f"training run {name}", log)


def log_report(trackers: Sequence[Tracker], path: str | Path, store: str | Path | None = None, *,
               group: str | None = None) -> None:
    """A run named "report" in `group`: the report file (or folder) as an artifact, the store's path as a param."""
    if not trackers:
        return
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such report to log")
    params = {"report": str(path.resolve()), **({"store": str(Path(store).resolve())} if store else {})}

    def log(tracker: Tracker) -> None:
        tracker.start_run("report", group, params, kind="report")
        tracker.log_artifact(path)
        tracker.end()

    _each(trackers, "the report", log)
