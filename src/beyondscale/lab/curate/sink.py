"""The main-process end of the pipeline: dedup index, keep rule, writers and counters.

Outcomes arrive in input order, so "the first of a duplicate cluster is kept" is deterministic
whatever the number of workers. With `--keep-fraction` the final cut needs every score, so the
survivors are spooled to a file (never held in memory) and split in a second pass.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from beyondscale.lab.curate.dedup import ExactDedup, MinHashDedup
from beyondscale.lab.curate.summary import histogram
from beyondscale.lab.curate.worker import Outcome
from beyondscale.lab.curate.writer import KeptWriter, RemovedWriter

SPOOL = "_scored.jsonl"


class Sink:
    """Consumes `Outcome`s; `finish()` returns the counting part of the summary."""

    def __init__(self, folder: Path, recipe: dict[str, Any], shard_bytes: int) -> None:
        self.folder = folder
        self.kept = KeptWriter(folder / "kept", shard_bytes)
        self.removed = RemovedWriter(folder / "removed")
        dedup = recipe["dedup"]
        self.exact = ExactDedup() if dedup["mode"] in ("exact", "minhash") else None
        self.near = MinHashDedup(dedup["threshold"], dedup["num_perm"]) if dedup["mode"] == "minhash" else None
        scorer = recipe["scorer"] or {}
        self.threshold = scorer.get("score_threshold")
        self.fraction = scorer.get("keep_fraction")
        self.spool = (folder / SPOOL).open("w", encoding="utf-8") if self.fraction is not None else None
        self.scores = array("f")
        self.reasons: Counter = Counter({rule: 0 for rule in recipe["rules"]})
        self.details: dict[str, Counter] = {}
        self.total = 0

    @property
    def kept_so_far(self) -> int:
        return self.kept.count

    def _remove(self, rule: str, reason: str, record: dict[str, Any]) -> None:
        self.reasons[rule] += 1
        self.details.setdefault(rule, Counter())[reason] += 1
        self.removed.write(rule, {**record, "rule": rule, "reason": reason})

    def _duplicate_of(self, outcome: Outcome) -> tuple[str, str] | None:
        if self.exact is not None:
            first = self.exact.check(outcome.id, outcome.text)
            if first is not None:
                return first, "exact_duplicate"
        if self.near is not None and outcome.signature is not None:
            first = self.near.check(outcome.id, outcome.signature)
            if first is not None:
                return first, "near_duplicate"
        return None

    def take(self, outcomes: list[Outcome]) -> None:
        """Route each outcome: removed by a rule, a duplicate, below the score cut, or kept."""
        for outcome in outcomes:
            self.total += 1
            record = {"id": outcome.id, "text": outcome.text}
            if outcome.rule is not None:
                self._remove(outcome.rule, outcome.reason or outcome.rule, record)
                continue
            duplicate = self._duplicate_of(outcome)
            if duplicate is not None:
                self._remove("dedup", duplicate[1], {**record, "duplicate_of": duplicate[0]})
                continue
            if outcome.score is not None:
                record["score"] = round(outcome.score, 6)
                self.scores.append(outcome.score)
                if self.spool is not None:
                    self.spool.write(json.dumps(record, ensure_ascii=False) + "\n")
                    continue
                if outcome.score < self.threshold:
                    self._remove("scorer", "below_threshold", record)
                    continue
            self.kept.write(record)

    def _split_spool(self) -> float | None:
        """Keep the top `fraction` of spooled documents by score (ties: earlier first)."""
        assert self.spool is not None
        self.spool.close()
        scores = np.frombuffer(self.scores, dtype=np.float32)
        n_keep = math.ceil(self.fraction * scores.size)
        order = np.argsort(-scores, kind="stable")
        keep = np.zeros(scores.size, dtype=bool)
        keep[order[:n_keep]] = True
        with (self.folder / SPOOL).open(encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                record = json.loads(line)
                if keep[index]:
                    self.kept.write(record)
                else:
                    self._remove("scorer", "below_keep_fraction", record)
        (self.folder / SPOOL).unlink()
        return float(scores[order[n_keep - 1]]) if n_keep else None

    def finish(self) -> dict[str, Any]:
        """Close everything; the counts, reasons, hash and histogram for the summary."""
        used = self._split_spool() if self.spool is not None else self.threshold
        if self.exact is not None:
            self.reasons.setdefault("dedup", 0)
        if self.threshold is not None or self.fraction is not None:
            self.reasons.setdefault("scorer", 0)
        self.kept.close()
        self.removed.close()
        dropped = self.total - self.kept.count
        return {
            "kept": self.kept.count, "dropped": dropped, "total": self.total,
            "kept_fraction": round(self.kept.count / self.total, 6) if self.total else 0.0,
            "reasons": dict(self.reasons), "reason_details": {k: dict(v) for k, v in self.details.items()},
            "kept_files": list(self.kept.shards), "kept_bytes": self.kept.bytes,
            "data_hash": self.kept.digest.hexdigest(),
            "score_histogram": histogram(np.frombuffer(self.scores, dtype=np.float32)),
            "score_threshold_used": used,
        }
