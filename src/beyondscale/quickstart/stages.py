"""What each stage of the study returns: typed values that the later stages, the conclusions and the report
read (none of them changes another's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beyondscale.lab.sweep import TrainedLadder
from beyondscale.quickstart.spec import StudySpec


@dataclass(frozen=True)
class CorpusStage:
    raw: Path  # the training pool, JSONL
    tasks: dict[str, Path]  # task name -> task file (the held-out bits per byte first)
    summary: dict[str, Any]  # source, pool_files, test_files, pool_bytes, heldout_docs, user_corpus


@dataclass(frozen=True)
class CurationStage:
    kept: Path  # the curated pool
    summary: dict[str, Any]  # kept, total, kept_fraction, reasons, rules, hashes


@dataclass(frozen=True)
class EvaluationStage:
    specs: dict[str, str]  # model name -> model spec, every model evaluated
    keys: dict[str, str]  # model name -> model key
    metrics: dict[str, dict[str, float | None]]  # model name -> "task/metric" -> value
    run_ids: tuple[str, ...]


@dataclass
class StudyResult:
    spec: StudySpec
    corpus: CorpusStage
    curation: CurationStage
    ladder: TrainedLadder
    evaluation: EvaluationStage
    analysis: Any  # analysis.Analysis, the study's findings first
    report: Path
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
