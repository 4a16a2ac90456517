"""`beyondscale curate`, `curate-scorer` and `curate-rules` as functions of one settings object each.

The settings hold the flags as given (`rules` a comma-separated string, `set` the RULE.PARAM=VALUE
strings); these functions check and interpret them, so a bad value is one `UserError` naming its flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beyondscale.errors import UserError
from beyondscale.lab.curate import reader
from beyondscale.lab.curate import rules as rule_table
from beyondscale.lab.curate.pipeline import CurateSettings, Progress, run_curate


@dataclass(frozen=True)
class CurateRequest:
    inputs: list[str]  # text files, folders, .jsonl files or hub:NAME datasets
    out: str  # output folder: kept/*.jsonl, removed/RULE.jsonl, summary.json
    rules: str = ",".join(rule_table.DEFAULT_RULES)  # heuristic filters in order; 'none' for none
    set: list[str] = field(default_factory=list)  # threshold overrides: RULE.PARAM=VALUE
    dedup: str = "minhash"  # none, exact or minhash (exact then MinHash LSH)
    minhash_threshold: float = 0.8
    scorer: str = "none"  # 'none' or a scorer file from `curate-scorer`
    score_threshold: float | None = None
    keep_fraction: float | None = None
    workers: int | None = None  # None: all cores
    text_field: str = "text"
    hub_split: str = "train"
    hub_config: str | None = None
    overwrite: bool = False

    def settings(self) -> CurateSettings:
        """The pipeline's settings, every flag checked against the rule table."""
        names = [] if self.rules.strip().lower() == "none" else [r.strip() for r in self.rules.split(",") if r.strip()]
        rule_table.check_rules(names)
        settings = CurateSettings(
            rules=names, overrides=rule_table.parse_overrides(list(self.set or []), names), dedup=self.dedup,
            minhash_threshold=self.minhash_threshold, scorer=None if self.scorer.lower() == "none" else self.scorer,
            score_threshold=self.score_threshold, keep_fraction=self.keep_fraction, overwrite=self.overwrite,
            hub=reader.HubOptions(config=self.hub_config, split=self.hub_split, text_field=self.text_field),
        )
        if self.workers is not None:
            settings.workers = self.workers
        return settings


def curate(request: CurateRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Filter, deduplicate and score a corpus with FineWeb's rules (datatrove); the summary document
    (also stored as OUT/summary.json). `progress(bytes, docs, kept)` is called as input is read."""
    return run_curate(list(request.inputs), request.out, request.settings(), progress=progress)


@dataclass(frozen=True)
class ScorerRequest:
    high: list[str]  # high-quality examples (files, folders, .jsonl)
    low: list[str]  # low-quality examples
    out: str  # where the scorer is saved (.safetensors)
    text_field: str = "text"
    c: float = 1.0  # inverse L2 strength of the logistic regression
    seed: int = 0


def train_quality_scorer(request: ScorerRequest) -> dict[str, Any]:
    """Train the quality scorer (hashed n-grams + logistic regression); where it went, its sha256 and fit."""
    from beyondscale.lab.curate.scorer import train_scorer

    if not request.c > 0:
        raise UserError(f"--c {request.c}: must be positive")
    options = reader.HubOptions(text_field=request.text_field)
    texts = {side: [d.text for d in reader.iter_documents(paths, options)]
             for side, paths in (("high", request.high), ("low", request.low))}
    model = train_scorer(texts["high"], texts["low"], c=request.c, seed=request.seed)
    digest = model.save(request.out)
    return {"out": request.out, "sha256": digest, **model.info}


def rules_table() -> list[dict[str, Any]]:
    """The heuristic rules' thresholds (published defaults), as `--set RULE.PARAM=VALUE` sees them."""
    return [{"rule": rule, "param": name, "default": p.default, "low": p.low, "high": p.high,
             "can_be_none": p.optional, "meaning": p.note, "source": spec.paper}
            for rule, spec in rule_table.RULES.items() for name, p in spec.params.items()]


def input_bytes(request: CurateRequest) -> int | None:
    """Bytes the inputs hold (None when unknown, e.g. hub datasets): the size of a progress bar."""
    return reader.input_bytes(list(request.inputs))

