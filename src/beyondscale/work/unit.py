"""The unit of work: one model and the parts of its tasks still to compute, run without a store.

`run_unit(unit)` takes plain picklable data (a `Unit`) and yields plain picklable results
(`FactsResult`, then one `BatchResult` per engine batch), so a loop here, a Ray worker or the lab run
the same code; the driver's single writer commits what it yields. The model loads once for all the
unit's tasks, and only when a unit is run: a finished study plans no units and loads nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from beyondscale.engine.requests import Item
from beyondscale.errors import Failure
from beyondscale.keys import content_key
from beyondscale.models.ref import ModelRef


def content_hash(obj: Any) -> str:
    """The short content key used for batches (and, until models.model_key lands, for models)."""
    return content_key(obj)


@dataclass(frozen=True)
class LoadSettings:
    """How to load and run a model; none of it changes which items are computed."""

    device: str  # resolved: cpu, cuda, cuda:1 ...
    dtype: str = "auto"
    trust_remote_code: bool = False
    batch_size: int | str = "auto"
    max_length: int | None = None
    add_bos_token: bool | None = None
    rolling_stride: int | None = None
    cpu_watts: float | None = None
    quantize: str = "none"  # int8 | int4 | none (part of the model key, see models.quantize)


@dataclass(frozen=True)
class ModelJob:
    ref: ModelRef
    model_key: str
    identity: str
    load: LoadSettings


@dataclass(frozen=True)
class TaskJob:
    """A task version's items (all of them when planned from, the ones still to do in a `Unit`)."""

    task_key: str
    task: str
    items: tuple[Item, ...]
    item_keys: tuple[str, ...]


@dataclass(frozen=True)
class Unit:
    model: ModelJob
    tasks: tuple[TaskJob, ...]
    want_facts: bool = False  # the store has no facts for this model yet

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(self.model.model_key, t.task_key) for t in self.tasks]


@dataclass(frozen=True)
class FactsResult:
    model_key: str
    facts: dict[str, Any]


@dataclass(frozen=True)
class BatchResult:
    """One engine batch: rows (item_key, doc_id, request, result) and its Measurement as a dict."""

    model_key: str
    task_key: str
    batch_key: str
    rows: tuple[tuple[str, int, dict[str, Any], dict[str, Any]], ...]
    measurement: dict[str, Any]
    environment_key: str | None = None  # the machine that measured it (a Ray worker may not be the driver's)


@dataclass(frozen=True)
class UnitLog:
    """Lines of a unit's log (what its worker logged, or the driver's notes: retries, failures).
    `notice` lines are also shown in the driver's terminal."""

    model_key: str
    text: str
    notice: bool = False


@dataclass(frozen=True, kw_only=True)
class UnitFailed(Failure):
    """A unit that stopped before its end. `retriable` only when its worker died (crash, lost object),
    never for an error the unit's own code raised: that one would fail again, so it is reported once."""

    model_key: str
    retriable: bool = False


UnitOutput = FactsResult | BatchResult | UnitLog | UnitFailed


def run_unit(unit: Unit) -> Iterator[UnitOutput]:
    """Load the unit's model once, then score each task's items batch by batch (pure: no store)."""
    from beyondscale import measure
    from beyondscale.engine import Engine
    from beyondscale.models import load_model
    from beyondscale.models.load import preload_libraries

    s = unit.model.load
    preload_libraries()  # shared library code stays out of the model's peak memory
    meter = measure.Meter(device=s.device, cpu_watts=s.cpu_watts)  # memory baseline before the model loads
    loaded = load_model(unit.model.ref, dtype=s.dtype, device=s.device, trust_remote_code=s.trust_remote_code,
                        identity=unit.model.identity, quantize=s.quantize)
    yield FactsResult(unit.model.model_key, loaded.facts.to_dict())
    engine = Engine(loaded.model, loaded.tokenizer, batch_size=s.batch_size, max_length=s.max_length,
                    add_bos_token=s.add_bos_token, rolling_stride=s.rolling_stride)
    env_key = measure.environment().get("environment_key")
    for task in unit.tasks:
        yield from _run_task(unit.model.model_key, task, engine, meter, env_key)


def _run_task(model_key: str, task: TaskJob, engine: Any, meter: Any,
              env_key: str | None) -> Iterator[BatchResult]:
    key_of = dict(zip(task.items, task.item_keys, strict=True))
    for batch in engine.plan(list(task.items)) if task.items else []:
        with meter.measure() as m:
            results = engine.run_batch(batch)
            m.add_tokens(sum(r.tokens_in for r in results), sum(r.tokens_out for r in results))
            m.add_flops(sum(r.flops or 0 for r in results))
        keys = [key_of[item] for item in batch]
        rows = tuple((k, it.doc_id, asdict(it), res.to_json()) for k, it, res in zip(keys, batch, results, strict=True))
        yield BatchResult(model_key, task.task_key, content_hash(keys), rows, m.result.to_dict(), env_key)
