"""The models of an evaluation: references checked before anything runs, and each one's job (identity, key,
load settings) and label, for whichever way the run is driven (evaluator.run, evaluator.harness)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from beyondscale.evaluator.keys import model_key_for
from beyondscale.evaluator.settings import EvalSettings


def parse_models(models: Sequence[str]) -> list[Any]:
    """Every model's reference, its local weight files' headers read (cheap): a corrupt file stops here,
    before a run is stored or a progress bar drawn."""
    from beyondscale.models import parse_model_ref
    from beyondscale.models.load import check_weights

    refs = [parse_model_ref(m) for m in models]
    for ref in refs:
        if ref.kind == "folder":
            check_weights(ref)
    return refs


def model_job(db: Any, ref: Any, settings: EvalSettings, device: str) -> tuple[Any, Any]:
    """The model's job (identity, key, load settings) and label; stored facts get the lab record's fields."""
    from beyondscale.work import LoadSettings, ModelJob, ModelLabel, with_lab_record

    identity = ref.identity()
    key = model_key_for(ref, identity, settings, device)
    load = LoadSettings(device=device, dtype=settings.dtype, trust_remote_code=settings.trust_remote_code,
                        batch_size=settings.batch_size, max_length=settings.max_length,
                        add_bos_token=settings.add_bos_token, rolling_stride=settings.rolling_stride,
                        cpu_watts=settings.cpu_watts, quantize=settings.quantize)
    record = ref.lab_record()
    if settings.quantize not in ("none", None):  # a display name of its own (the key already differs)
        ref = replace(ref, name=f"{ref.name}-{settings.quantize}")
    label = ModelLabel(ref.name, settings.family, ref.to_dict(), identity, record)
    if (facts := db.model_facts(key)) is not None:
        db.put_model(key, label.name, label.family, label.ref, identity, with_lab_record(facts, record))
    return ModelJob(ref, key, identity, load), label
