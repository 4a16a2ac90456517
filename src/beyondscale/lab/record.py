"""The training record: `beyondscale_lab.json` beside the weights, a model card, and the store's lab tables.

Tables (created here with CREATE TABLE IF NOT EXISTS on the shared store connection; every write is
keyed, so writing the same run twice replaces rows instead of duplicating them):

    lab_training_runs(model_key PK, identity, out, arch, params_total, params_active, tokens,
                      train_flops, context_length, val_loss, train_loss, wall_s, energy_j,
                      energy_source, data_hash, data_variant, recipe JSON, teacher, record JSON)
    training_curve(model_key, kind 'train'|'val', step, tokens, flops, loss, lr, PK(model_key, kind, step))
    lab_expert_load(model_key, layer, expert, load, PK(model_key, layer, expert))

`model_key` is `beyondscale.models.model_key(ref, "float32")`, the key `eval` gives the folder on CPU;
`identity` (the content fingerprint) joins evaluations in other dtypes. The stored record adds
`val_tokens_sha256` (runs with equal hashes and context validate on the same windows: their losses compare)
and, once `store_checks` ran, `checks` (exact memorisation, other held-out losses).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from beyondscale.models.ref import LAB_MARKER

SCHEMA = """
CREATE TABLE IF NOT EXISTS lab_training_runs(
  model_key TEXT PRIMARY KEY, identity TEXT NOT NULL, out TEXT, arch TEXT, params_total INTEGER,
  params_active INTEGER, tokens INTEGER, train_flops REAL, context_length INTEGER, val_loss REAL,
  train_loss REAL, wall_s REAL, energy_j REAL, energy_source TEXT, data_hash TEXT, data_variant TEXT,
  recipe TEXT, teacher TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS training_curve(
  model_key TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER NOT NULL, tokens INTEGER, flops REAL,
  loss REAL, lr REAL, PRIMARY KEY(model_key, kind, step));
CREATE TABLE IF NOT EXISTS lab_expert_load(
  model_key TEXT NOT NULL, layer INTEGER NOT NULL, expert INTEGER NOT NULL, load REAL,
  PRIMARY KEY(model_key, layer, expert));
"""

CURVES = ("loss_curve", "val_curve")


def write_folder_record(out: Path, record: dict[str, Any]) -> None:
    (out / LAB_MARKER).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    (out / "README.md").write_text(model_card(record), encoding="utf-8")


def model_card(r: dict[str, Any]) -> str:
    """A short Hugging Face model card: what was trained, on what, at what cost; all figures measured."""
    data = r.get("data", {})
    lines = [
        "---", "library_name: transformers", "tags: [beyondscale-lab]", "---", "",
        f"# {r['arch']} model trained with `beyondscale train`", "",
        f"- architecture: {r['architecture']} ({r['params_total']:,} parameters, {r['params_active']:,} active per token)",
        f"- training tokens: {r['tokens']:,}; training FLOPs: {r['train_flops']:.3g} (counted, see beyondscale_lab.json)",
        f"- validation loss: {r['val_loss']:.4f} nats/token over {r['val_token_count']:,} held-out tokens",
        f"- data: {data.get('variant')} corpus, hash {data.get('data_hash')}",
        f"- wall time {r['wall_s']:.1f} s on {r['device']}; energy {r['energy_j']:.0f} J ({r['energy_source']})",
    ]
    if r.get("distill"):
        lines.append(f"- distilled from {r['distill']['teacher']}")
    lines += ["", "Load it with plain transformers: `AutoModelForCausalLM.from_pretrained(folder)`.", ""]
    return "\n".join(lines)


def ensure_tables(conn: Any) -> None:
    conn.executescript(SCHEMA)


def store_record(store_path: str | Path, out: Path, record: dict[str, Any]) -> str:
    """Write the run into the store's lab tables; returns the model key."""
    from beyondscale.models import model_key, parse_model_ref
    from beyondscale.store import Store

    ref = parse_model_ref(str(out))
    identity = ref.identity()
    key = model_key(ref, "float32", identity=identity)
    db = Store(store_path)
    try:
        ensure_tables(db.conn)
        with db.transaction():
            _write(db.conn, key, identity, out, record)
    finally:
        db.close()
    return key


def _val_tokens_hash(r: dict[str, Any]) -> str | None:
    """sha256 of the validation tokens: runs share a validation set exactly when this (and the context) match."""
    path = Path(str(r.get("val_tokens") or ""))
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(conn: Any, key: str, identity: str, out: Path, r: dict[str, Any]) -> None:
    data = r.get("data", {})
    slim = {k: v for k, v in r.items() if k not in CURVES}
    slim.setdefault("val_tokens_sha256", _val_tokens_hash(r))
    conn.execute(
        "INSERT OR REPLACE INTO lab_training_runs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (key, identity, str(out), r["arch"], r["params_total"], r["params_active"], r["tokens"], r["train_flops"],
         r["context_length"], r["val_loss"], r.get("train_loss"), r["wall_s"], r["energy_j"], r["energy_source"],
         data.get("data_hash"), data.get("variant"), json.dumps(data.get("recipe")),
         (r.get("distill") or {}).get("teacher"), json.dumps(slim, default=str)))
    conn.execute("DELETE FROM training_curve WHERE model_key=?", (key,))
    conn.executemany(
        "INSERT OR REPLACE INTO training_curve VALUES(?,?,?,?,?,?,?)",
        [(key, kind, p["step"], p["tokens"], p["flops"], p["loss"], p.get("lr"))
         for kind, name in (("train", "loss_curve"), ("val", "val_curve")) for p in r.get(name, [])])
    conn.execute("DELETE FROM lab_expert_load WHERE model_key=?", (key,))
    conn.executemany("INSERT INTO lab_expert_load VALUES(?,?,?,?)",
                     [(key, layer, e, load) for layer, loads in enumerate(r.get("expert_load") or [])
                      for e, load in enumerate(loads)])


def store_checks(store_path: str | Path, key: str, checks: dict[str, Any]) -> None:
    """Add post-training checks (exact memorisation, loss on other held-out sets) to a stored run's record."""
    from beyondscale.store import Store

    db = Store(store_path)
    try:
        ensure_tables(db.conn)
        with db.transaction():
            row = db.conn.execute("SELECT record FROM lab_training_runs WHERE model_key=?", (key,)).fetchone()
            if row is None:
                raise KeyError(f"no lab run {key} in {store_path}")
            record = json.loads(row[0])
            record["checks"] = {**(record.get("checks") or {}), **checks}
            db.conn.execute("UPDATE lab_training_runs SET record=? WHERE model_key=?",
                            (json.dumps(record, default=str), key))
    finally:
        db.close()


def read_tables(store_path: str | Path) -> dict[str, Any]:
    """The lab tables as DataFrames (runs, curve, expert_load) for analysis and the report; empty when absent."""
    import pandas as pd

    from beyondscale.store import Store

    db = Store(store_path, create=False)
    try:
        ensure_tables(db.conn)
        return {name: pd.read_sql_query(f"SELECT * FROM {table}", db.conn)
                for name, table in (("runs", "lab_training_runs"), ("curve", "training_curve"),
                                    ("expert_load", "lab_expert_load"))}
    finally:
        db.close()
