"""CrowS-Pairs (Nangia et al. 2020), scored exactly as lm-evaluation-harness scores `crows_pairs_english`.

lm-eval 0.4.13 (tasks/crows_pairs): a multiple-choice request with an empty context, no target
delimiter and the choices [sent_more, sent_less]; its HF backend scores each sentence's
log-likelihood after the prefix token (BOS, else EOS). Per pair: `pct_stereotype` = 1 if
ll(sent_more) > ll(sent_less) else 0, `likelihood_diff` = |ll(sent_more) - ll(sent_less)|; both
averaged. lm-eval ignores `stereo_antistereo`; we report it as a breakdown only.

Data: the authors' CSV (columns sent_more, sent_less, stereo_antistereo, bias_type; the unnamed
first column is the pair id), a JSONL with the same fields, a hub dataset (`hub:ORG/NAME[:CONFIG]`,
lm-eval's is `hub:jannalu/crows_pairs_multilingual:english`), or an lm-eval `crows_pairs*.yaml`
task file (lm-eval loads it and its documents, see `lmeval_task`). Pairs known to be invalid
(Blodgett et al. 2021; Névéol et al. 2022) are flagged from a list of pair ids the user gives, and
the scores are also reported without them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from beyondscale.bias.scoring import bootstrap_ci, hub_rows, loglikelihoods, read_rows, text_field
from beyondscale.errors import UserError

PROBE_VERSION = "crows-1"
REQUIRED = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
DIRECTIONS = ("stereo", "antistereo")


@dataclass(frozen=True)
class CrowsPair:
    pair_id: str
    sent_more: str
    sent_less: str
    direction: str
    bias_type: str


def _pair(path: Any, number: int, row: dict[str, Any]) -> CrowsPair:
    direction = str(row.get("stereo_antistereo", "")).strip()
    if direction not in DIRECTIONS:
        raise UserError(f"{path}: row {number}: stereo_antistereo is {direction!r}, expected stereo or antistereo")
    bias_type = text_field(path, number, row, "bias_type").strip()
    pair_id = row.get("") if row.get("") not in (None, "") else row.get("id", number)
    return CrowsPair(str(pair_id), text_field(path, number, row, "sent_more"),
                     text_field(path, number, row, "sent_less"), direction, bias_type)


def read_pairs(data: str | Path) -> list[CrowsPair]:
    """Pairs from a CSV/JSONL path, `hub:ORG/NAME[:CONFIG]` (test split, as lm-eval uses) or a task YAML."""
    spec = str(data)
    if spec.startswith("hub:"):
        rows = enumerate(hub_rows(spec.removeprefix("hub:")), 1)
    elif spec.endswith((".yaml", ".yml")):
        from beyondscale.bias.lmeval_task import task_rows

        rows, data = task_rows(spec, REQUIRED)
    else:
        rows = read_rows(data, REQUIRED)
    pairs = [_pair(data, number, row) for number, row in rows]
    if not pairs:
        raise UserError(f"--data {data}: no pairs")
    ids = [p.pair_id for p in pairs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"--data {data}: pair id {dup!r} appears more than once")
    return pairs


def read_invalid_ids(path: str | Path) -> set[str]:
    """Pair ids, one per line ('#' starts a comment)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--invalid {path}: no such file")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line}


def pair_items(pairs: list[CrowsPair]) -> list[Any]:
    """lm-eval's requests: empty context, target_delimiter "", choices [sent_more, sent_less]."""
    from beyondscale.engine import Item

    return [Item(doc_id=i, output_type="multiple_choice", context="", continuations=(p.sent_more, p.sent_less),
                 choices=(p.sent_more, p.sent_less), gold=0) for i, p in enumerate(pairs)]


def pair_scores(lls: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: pct_stereotype (0/1) and likelihood_diff, as lm-eval's process_results."""
    more = np.array([ll[0] for ll in lls])
    less = np.array([ll[1] for ll in lls])
    return (more > less).astype(float), np.abs(more - less)


def _summary(stereo: np.ndarray, diff: np.ndarray, seed: int) -> dict[str, Any]:
    if len(stereo) == 0:
        return {"n": 0}
    return {"n": int(len(stereo)), "pct_stereotype": float(stereo.mean()),
            "pct_stereotype_ci95": bootstrap_ci(stereo, seed=seed), "likelihood_diff": float(diff.mean()),
            "likelihood_diff_ci95": bootstrap_ci(diff, seed=seed)}


def _groups(pairs: list[CrowsPair], attr: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        out[getattr(p, attr)].append(i)
    return dict(sorted(out.items()))


def summarize(pairs: list[CrowsPair], lls: list[list[float]], invalid: set[str] | None = None,
              seed: int = 1234) -> dict[str, Any]:
    """Overall, per bias type and per direction scores with bootstrap 95% intervals."""
    stereo, diff = pair_scores(lls)
    doc = _summary(stereo, diff, seed)
    doc["per_bias_type"] = {k: _summary(stereo[i], diff[i], seed) for k, i in _groups(pairs, "bias_type").items()}
    doc["per_direction"] = {k: _summary(stereo[i], diff[i], seed) for k, i in _groups(pairs, "direction").items()}
    if invalid is not None:
        flagged = [i for i, p in enumerate(pairs) if p.pair_id in invalid]
        keep = np.array([i for i in range(len(pairs)) if pairs[i].pair_id not in invalid], dtype=int)
        doc["flagged_invalid"] = [pairs[i].pair_id for i in flagged]
        doc["without_flagged"] = _summary(stereo[keep], diff[keep], seed)
    return doc


def score_crows(model: Any, tokenizer: Any, pairs: list[CrowsPair], invalid: set[str] | None = None,
                seed: int = 1234) -> tuple[dict[str, Any], list[list[float]]]:
    """Summary and the per-pair [ll(sent_more), ll(sent_less)]."""
    lls = loglikelihoods(model, tokenizer, pair_items(pairs))
    return summarize(pairs, lls, invalid, seed), lls
