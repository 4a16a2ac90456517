"""The lab's training records: the typed record, and the three store tables that hold it.

    lab_training_runs(model_key PK, identity, out, arch, params_total, params_active, tokens,
                      train_flops, context_length, val_loss, train_loss, wall_s, energy_j,
                      energy_source, data_hash, data_variant, recipe JSON, teacher, record JSON)
    training_curve(model_key, kind 'train'|'val', step, tokens, flops, loss, lr, PK(model_key, kind, step))
    lab_expert_load(model_key, layer, expert, load, PK(model_key, layer, expert))

A record has one name per field: `tokens` (training tokens) and `train_flops` (training FLOPs, counted).
Records of schema 1 (folders and stores written before) also carried twins of those two
(`training_tokens`, `training_flops`); they are read under the one name. Every write is keyed, so
writing a run twice replaces its rows instead of duplicating them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

import pandas as pd

from beyondscale.errors import UserError
from beyondscale.store.db import Store

RECORD_SCHEMA = 2  # 1: with the twin names below; 2: one name per field
LEGACY_NAMES = {"training_tokens": "tokens", "training_flops": "train_flops"}
CURVES = ("loss_curve", "val_curve")  # kept in `training_curve`, not in the stored record JSON


def current_names(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record (or a hand-written part of one) with schema 1's twin keys read under their one name."""
    out = {k: v for k, v in record.items() if k not in LEGACY_NAMES}
    for old, new in LEGACY_NAMES.items():
        if out.get(new) is None and record.get(old) is not None:
            out[new] = record[old]
    return out


@dataclass(frozen=True)
class TrainingRecord(Mapping[str, Any]):
    """What one training run measured (every figure counted or measured, none typed in).

    It also reads as a mapping of its JSON form (`record["val_loss"]`, `record.get("checks")`), so code that
    read the old dict keeps working; the twin names of schema 1 are not keys of it.
    """

    out: str
    arch: str  # 'dense' or 'moe'
    architecture: str  # the Hugging Face class, e.g. LlamaForCausalLM
    params_total: int
    params_active: int  # per token: only the routed experts count
    tokens: int  # training tokens
    train_flops: float  # training FLOPs, counted (see flops_convention)
    context_length: int
    val_loss: float  # nats per token on the held-out windows
    wall_s: float
    energy_j: float
    energy_source: str
    params_embedding: int | None = None
    steps: int | None = None
    flops_convention: str | None = None
    val_tokens: str | None = None  # path of the validation tokens
    val_token_count: int | None = None
    train_loss: float | None = None
    train_loss_sample: str | None = None
    generalisation_gap: float | None = None
    energy_estimated: bool | None = None
    segments: int | None = None  # training segments (a resumed run has several)
    device: str | None = None
    hardware: Any = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    peak_flops_source: str | None = None
    expert_load: list | None = None
    moe_layers: list | None = None
    distill: dict | None = None
    data: dict = field(default_factory=dict)
    shape: dict | None = None
    train_config: dict | None = None
    seed: int | None = None
    compiled: bool | None = None
    loss_curve: list = field(default_factory=list)
    val_curve: list = field(default_factory=list)
    model_key: str | None = None  # set once the run is in a store
    val_tokens_sha256: str | None = None  # equal hashes (and context): the losses compare
    checks: dict | None = None  # post-training checks (memorisation, other held-out losses)
    extra: dict = field(default_factory=dict)  # keys this version does not name, kept as they were

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "training record") -> TrainingRecord:
        """Read a record of any schema (JSON beside the weights, a store row, a returned document)."""
        values = current_names(raw)
        values.pop("schema", None)
        missing = [f.name for f in fields(cls) if _required(f) and values.get(f.name) is None]
        if missing:
            raise UserError(f"{source}: not a training record (no {', '.join(missing)})")
        return cls(**{k: v for k, v in values.items() if k in _NAMED},
                   extra={k: v for k, v in values.items() if k not in _NAMED})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (beyondscale_lab.json, the store's record column): one key per field."""
        return {"schema": RECORD_SCHEMA, **{name: getattr(self, name) for name in _NAMED}, **self.extra}

    def stored_form(self) -> dict[str, Any]:
        """The JSON the store keeps in `lab_training_runs.record`: the curves have their own table."""
        return {k: v for k, v in self.to_dict().items() if k not in CURVES}

    def __getitem__(self, key: str) -> Any:
        if key in _NAMED:
            return getattr(self, key)
        if key == "schema":
            return RECORD_SCHEMA
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _required(f: Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


_NAMED = tuple(f.name for f in fields(TrainingRecord) if f.name != "extra")


@dataclass(frozen=True)
class TrainingTables:
    """The store's lab tables as DataFrames (empty when no run was stored)."""

    runs: pd.DataFrame  # lab_training_runs
    curve: pd.DataFrame  # training_curve
    expert_load: pd.DataFrame  # lab_expert_load


def put_training_run(store: Store, model_key: str, identity: str, record: TrainingRecord) -> None:
    """The run's row, its loss curves and its expert load in one transaction, replacing an earlier write."""
    r, data = record, record.data
    with store.transaction():
        store.conn.execute(
            "INSERT OR REPLACE INTO lab_training_runs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (model_key, identity, r.out, r.arch, r.params_total, r.params_active, r.tokens, r.train_flops,
             r.context_length, r.val_loss, r.train_loss, r.wall_s, r.energy_j, r.energy_source,
             data.get("data_hash"), data.get("variant"), json.dumps(data.get("recipe")),
             (r.distill or {}).get("teacher"), json.dumps(r.stored_form(), default=str)))
        store.conn.execute("DELETE FROM training_curve WHERE model_key=?", (model_key,))
        store.conn.executemany(
            "INSERT OR REPLACE INTO training_curve VALUES(?,?,?,?,?,?,?)",
            [(model_key, kind, p["step"], p["tokens"], p["flops"], p["loss"], p.get("lr"))
             for kind, curve in (("train", r.loss_curve), ("val", r.val_curve)) for p in curve])
        store.conn.execute("DELETE FROM lab_expert_load WHERE model_key=?", (model_key,))
        store.conn.executemany("INSERT INTO lab_expert_load VALUES(?,?,?,?)",
                               [(model_key, layer, e, load) for layer, loads in enumerate(r.expert_load or [])
                                for e, load in enumerate(loads)])


def add_training_checks(store: Store, model_key: str, checks: dict[str, Any]) -> None:
    """Merge post-training checks into a stored run's record; KeyError when the store has no such run."""
    with store.transaction():
        row = store.conn.execute("SELECT record FROM lab_training_runs WHERE model_key=?", (model_key,)).fetchone()
        if row is None:
            raise KeyError(f"no lab run {model_key} in {store.path}")
        record = current_names(json.loads(row[0]))
        record["checks"] = {**(record.get("checks") or {}), **checks}
        store.conn.execute("UPDATE lab_training_runs SET record=? WHERE model_key=?",
                           (json.dumps(record, default=str), model_key))


def stored_training_record(store: Store, model_key: str) -> TrainingRecord | None:
    """A stored run's record (its curves read back from `training_curve`), or None."""
    row = store.conn.execute("SELECT record FROM lab_training_runs WHERE model_key=?", (model_key,)).fetchone()
    if row is None:
        return None
    curves = {name: [{"step": s, "tokens": t, "flops": f, "loss": loss, "lr": lr} for s, t, f, loss, lr in
                     store.conn.execute("SELECT step, tokens, flops, loss, lr FROM training_curve WHERE model_key=? "
                                        "AND kind=? ORDER BY step", (model_key, kind))]
              for name, kind in (("loss_curve", "train"), ("val_curve", "val"))}
    return TrainingRecord.from_dict({**json.loads(row[0]), **curves}, source=f"{store.path}: run {model_key}")


def training_tables(store: Store) -> TrainingTables:
    """Every stored run, curve point and expert load, for analysis and the report."""
    return TrainingTables(*(store.query(f"SELECT * FROM {table}")
                            for table in ("lab_training_runs", "training_curve", "lab_expert_load")))
