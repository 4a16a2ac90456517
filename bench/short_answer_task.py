"""A short-answer 3-choice task built offline from the Python standard library's own prose.

The throughput benchmark's second format (the first is the quickstart's long-passage next-sentence
task): a passage of about 70 tokens cut at a word boundary, and three candidate next-word runs of
about 4 tokens: the true next three words and two runs of three words from other source files.
Documents come from `beyondscale.corpora.stdlib_prose.load_corpus()` (read, never imported), in a fixed
seeded order, so the same Python version gives byte-identical files.

    python bench/short_answer_task.py OUT_DIR [--n 200]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import yaml

NAME = "short_answer"
CONTEXT_CHARS = (320, 390)  # ~70 tokens of English prose for the SmolLM2 / Gemma tokenizers
ANSWER_WORDS = 3  # ~4 tokens


def _runs(words: list[str]) -> list[tuple[int, int]]:
    """(start, cut) pairs: a context of words[start:cut] in CONTEXT_CHARS, then ANSWER_WORDS more words."""
    out = []
    for start in range(0, len(words), 40):
        length, cut = 0, start
        while cut < len(words) and length < CONTEXT_CHARS[0]:
            length += len(words[cut]) + 1
            cut += 1
        if CONTEXT_CHARS[0] <= length <= CONTEXT_CHARS[1] and cut + ANSWER_WORDS <= len(words):
            out.append((start, cut))
    return out


def items(n: int, seed: int = 1234) -> list[dict]:
    """n rows {passage, choices (3), label}; distractors are word runs from other groups."""
    from beyondscale.corpora.stdlib_prose import load_corpus, stable_unit

    docs = sorted(load_corpus().documents, key=lambda d: (stable_unit("short", seed, d.doc_id), d.doc_id))
    rng = random.Random(seed)
    candidates = []
    for doc in docs:
        words = doc.text.split()
        for start, cut in _runs(words)[:1]:
            candidates.append((doc.group, " ".join(words[start:cut]), " ".join(words[cut:cut + ANSWER_WORDS])))
    rows = []
    for i, (group, passage, answer) in enumerate(candidates):
        if len(rows) >= n:
            break
        others = [a for g, _, a in candidates[i + 1:] + candidates[:i] if g != group and a != answer]
        distractors = [others[int(rng.random() * len(others))] for _ in range(2)]
        if len(set(distractors)) < 2:
            continue
        label = min(int(rng.random() * 3), 2)
        choices = list(distractors)
        choices.insert(label, answer)
        rows.append({"id": f"{NAME}-{len(rows):04d}", "passage": passage, "choices": choices, "label": label})
    return rows


def write_task(out: Path, n: int = 200, seed: int = 1234) -> Path:
    """Write short_answer.jsonl + short_answer.yaml (lm-evaluation-harness field names) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = items(n, seed)
    (out / f"{NAME}.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    spec = {
        "task": NAME, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": f"{NAME}.jsonl"}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{passage}}",
        "doc_to_target": "{{label}}", "doc_to_choice": "choices", "target_delimiter": " ",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
    }
    path = out / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_task(Path(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else 200))
