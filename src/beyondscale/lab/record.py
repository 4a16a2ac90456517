"""The training record's homes: `beyondscale_lab.json` beside the weights, a model card, and the store.

The record itself (`TrainingRecord`) and its tables (`lab_training_runs`, `training_curve`,
`lab_expert_load`) belong to `beyondscale.store.training`; this module decides the run's key and the hash
of its validation tokens. `model_key` is `beyondscale.models.model_key(ref, "float32")`, the key `eval`
gives the folder on CPU; `identity` (the content fingerprint) joins evaluations in other dtypes. The
stored record adds `val_tokens_sha256` (runs with equal hashes and context validate on the same
windows: their losses compare) and, once `store_checks` ran, `checks` (exact memorisation, other
held-out losses).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from beyondscale.models import model_key, parse_model_ref
from beyondscale.models.ref import LAB_MARKER
from beyondscale.store import Store
from beyondscale.store.training import TrainingRecord, add_training_checks, put_training_run


def write_folder_record(out: Path, record: TrainingRecord) -> None:
    (out / LAB_MARKER).write_text(json.dumps(record.to_dict(), indent=1, default=str), encoding="utf-8")
    (out / "README.md").write_text(model_card(record), encoding="utf-8")


def read_folder_record(out: Path) -> TrainingRecord:
    """The record a finished run left beside its weights (any schema: old twin names are read as one)."""
    path = out / LAB_MARKER
    return TrainingRecord.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def model_card(r: TrainingRecord) -> str:
    """A short Hugging Face model card: what was trained, on what, at what cost; all figures measured."""
    lines = [
        "---", "library_name: transformers", "tags: [beyondscale-lab]", "---", "",
        f"# {r.arch} model trained with `beyondscale train`", "",
        f"- architecture: {r.architecture} ({r.params_total:,} parameters, {r.params_active:,} active per token)",
        f"- training tokens: {r.tokens:,}; training FLOPs: {r.train_flops:.3g} (counted, see beyondscale_lab.json)",
        f"- validation loss: {r.val_loss:.4f} nats/token over {r.val_token_count:,} held-out tokens",
        f"- data: {r.data.get('variant')} corpus, hash {r.data.get('data_hash')}",
        f"- wall time {r.wall_s:.1f} s on {r.device}; energy {r.energy_j:.0f} J ({r.energy_source})",
    ]
    if r.distill:
        lines.append(f"- distilled from {r.distill['teacher']}")
    lines += ["", "Load it with plain transformers: `AutoModelForCausalLM.from_pretrained(folder)`.", ""]
    return "\n".join(lines)


def store_record(store_path: str | Path, out: Path, record: TrainingRecord) -> str:
    """Write the run into the store's lab tables; returns the model key."""
    ref = parse_model_ref(str(out))
    identity = ref.identity()
    key = model_key(ref, "float32", identity=identity)
    if record.val_tokens_sha256 is None:
        record = replace(record, val_tokens_sha256=_val_tokens_hash(record))
    with Store(store_path) as db:
        put_training_run(db, key, identity, record)
    return key


def _val_tokens_hash(r: TrainingRecord) -> str | None:
    """sha256 of the validation tokens: runs share a validation set exactly when this (and the context) match."""
    path = Path(str(r.val_tokens or ""))
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_checks(store_path: str | Path, key: str, checks: dict[str, Any]) -> None:
    """Add post-training checks (exact memorisation, loss on other held-out sets) to a stored run's record."""
    with Store(store_path) as db:
        add_training_checks(db, key, checks)
