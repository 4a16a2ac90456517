"""Exact match for generated text, with lm-evaluation-harness / HF `evaluate` options.

lm-eval's `exact_match` is `exact_match_hf_evaluate` (ported from HF evaluate's exact_match):
first every regex in `regexes_to_ignore` is deleted (`re.sub(regex, "", s)`, in order) from both
prediction and reference, then `ignore_case` lower-cases, `ignore_punctuation` deletes the
characters of `string.punctuation`, `ignore_numbers` deletes `string.digits`, and the strings are
compared with `==`. Nothing else is normalised: no whitespace stripping unless a regex says so.
With several acceptable references lm-eval scores 1.0 when any of them matches.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

_PUNCT_TABLE = str.maketrans("", "", string.punctuation)
_DIGIT_TABLE = str.maketrans("", "", string.digits)

EXACT_MATCH_OPTIONS: tuple[str, ...] = (
    "regexes_to_ignore",
    "ignore_case",
    "ignore_punctuation",
    "ignore_numbers",
)


def normalize_for_match(
    text: str,
    *,
    regexes_to_ignore: Sequence[str] | None = None,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
) -> str:
    """Apply lm-eval's exact_match normalisations to one string, in lm-eval's order."""
    if regexes_to_ignore is not None:
        if isinstance(regexes_to_ignore, str):
            regexes_to_ignore = [regexes_to_ignore]
        for rx in regexes_to_ignore:
            text = re.sub(rx, "", text)
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCT_TABLE)
    if ignore_numbers:
        text = text.translate(_DIGIT_TABLE)
    return text


def exact_match(
    prediction: str,
    references: str | Sequence[str],
    *,
    regexes_to_ignore: Sequence[str] | None = None,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
) -> float:
    """1.0 if the prediction equals any reference after lm-eval's normalisations, else 0.0."""
    refs = [references] if isinstance(references, str) else list(references)
    opts = {
        "regexes_to_ignore": regexes_to_ignore,
        "ignore_case": ignore_case,
        "ignore_punctuation": ignore_punctuation,
        "ignore_numbers": ignore_numbers,
    }
    pred = normalize_for_match(prediction, **opts)
    return 1.0 if any(pred == normalize_for_match(str(r), **opts) for r in refs) else 0.0
