"""The heuristic filters and their thresholds, in one table.

The rules are datatrove's own filter classes (FineWeb's pipeline), so a decision here is the
decision FineWeb would make. This module only names them, holds their published thresholds in
one table the user can override (`--set RULE.PARAM=VALUE`), checks every override's range and
applies the chosen rules in order.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from beyondscale.errors import UserError

DEFAULT_RULES = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


@dataclass(frozen=True)
class Param:
    """One threshold: its published default, its type and the range a value must fall in."""

    default: Any
    kind: type = float
    low: float | None = 0.0
    high: float | None = 1.0
    note: str = ""
    optional: bool = False  # datatrove accepts None (the check is off)


def _frac(default: float, note: str = "", optional: bool = False) -> Param:
    return Param(default, float, 0.0, 1.0, note, optional)


def _count(default: int, note: str = "", low: float = 0, optional: bool = False) -> Param:
    return Param(default, int, low, None, note, optional)


def _gopher(table: dict[str, Param]) -> dict[str, Param]:
    """Every Gopher threshold can be switched off with `none`, as datatrove allows."""
    return {name: Param(p.default, p.kind, p.low, p.high, p.note, True) for name, p in table.items()}


def _flag(default: bool, note: str = "") -> Param:
    return Param(default, bool, None, None, note)


@dataclass(frozen=True)
class RuleSpec:
    """A datatrove filter class and its parameter table (published defaults)."""

    cls_path: str
    params: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    paper: str = ""


TOP_NGRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}

RULES: dict[str, RuleSpec] = {
    "gopher_repetition": RuleSpec(
        "datatrove.pipeline.filters.gopher_repetition_filter:GopherRepetitionFilter",
        _gopher({
            "dup_line_frac": _frac(0.3, "duplicate lines / lines"),
            "dup_para_frac": _frac(0.3, "duplicate paragraphs / paragraphs"),
            "dup_line_char_frac": _frac(0.2, "characters in duplicate lines / characters"),
            "dup_para_char_frac": _frac(0.2, "characters in duplicate paragraphs / characters"),
            **{f"top_{n}_gram": _frac(v, f"characters in the most frequent {n}-gram") for n, v in TOP_NGRAMS.items()},
            **{f"dup_{n}_grams": _frac(v, f"characters in duplicated {n}-grams") for n, v in DUP_NGRAMS.items()},
        }),
        paper="Gopher (Rae et al. 2021), table A1",
    ),
    "gopher_quality": RuleSpec(
        "datatrove.pipeline.filters.gopher_quality_filter:GopherQualityFilter",
        _gopher({
            "min_doc_words": _count(50, "non-symbol words, at least"),
            "max_doc_words": _count(100000, "non-symbol words, at most"),
            "min_avg_word_length": Param(3, float, 0.0, None, "mean word length, at least"),
            "max_avg_word_length": Param(10, float, 0.0, None, "mean word length, at most"),
            "max_symbol_word_ratio": _frac(0.1, "'#' or ellipses per word"),
            "max_bullet_lines_ratio": _frac(0.9, "lines starting with a bullet"),
            "max_ellipsis_lines_ratio": _frac(0.3, "lines ending with an ellipsis"),
            "max_non_alpha_words_ratio": _frac(0.8, "words with a letter, at least (datatrove's name)"),
            "min_stop_words": _count(2, "distinct stop words among the, be, to, of, and, that, have, with"),
        }),
        paper="Gopher (Rae et al. 2021), section A.1.1",
    ),
    "c4": RuleSpec(
        "datatrove.pipeline.filters.c4_filters:C4QualityFilter",
        {
            "filter_no_terminal_punct": _flag(False, "FineWeb runs C4 without this rule (C4's paper: true)"),
            "min_num_sentences": _count(5, "sentences after line filtering (-1: off)", low=-1),
            "min_words_per_line": _count(3, "a line with fewer words is removed (-1: off)", low=-1),
            "max_word_length": _count(1000, "a line with a longer word is removed (-1: off)", low=-1),
            "remove_citations": _flag(True, "strip [1], [edit], [citation needed]"),
            "filter_lorem_ipsum": _flag(True, "drop documents with 'lorem ipsum'"),
            "filter_javascript": _flag(True, "remove lines mentioning javascript"),
            "filter_curly_bracket": _flag(True, "drop documents with '{'"),
            "filter_policy": _flag(True, "remove lines with cookie / terms-of-use phrases"),
        },
        paper="C4 (Raffel et al. 2020), as FineWeb runs it",
    ),
    "fineweb": RuleSpec(
        "datatrove.pipeline.filters.fineweb_quality_filter:FineWebQualityFilter",
        {
            "line_punct_thr": _frac(0.12, "lines ending in terminal punctuation, at least"),
            "line_punct_exclude_zero": _flag(False, "do not drop documents with no such line"),
            "short_line_thr": _frac(0.67, "lines of at most short_line_length characters, at most"),
            "short_line_length": _count(30, "what counts as a short line (characters)"),
            "char_duplicates_ratio": _frac(0.01, "characters in duplicated lines, at most"),
            "new_line_ratio": Param(0.3, float, 0.0, None, "newlines per word, at most"),
        },
        paper="FineWeb (Penedo et al. 2024)",
    ),
}


def _coerce(rule: str, name: str, spec: Param, raw: str) -> Any:
    """Turn `raw` into the parameter's type, or refuse it with one line naming the flag."""
    where = f"--set {rule}.{name}={raw}"
    if raw.lower() in ("none", "off") and spec.optional:
        return None
    try:
        if spec.kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        value = spec.kind(float(raw)) if spec.kind is int and float(raw).is_integer() else spec.kind(raw)
    except ValueError:
        expected = {int: "an integer", float: "a number", bool: "true or false"}[spec.kind]
        raise UserError(f"{where}: expected {expected}") from None
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        bounds = f"[{spec.low}, {spec.high if spec.high is not None else 'inf'}]"
        raise UserError(f"{where}: out of range, expected a value in {bounds}")
    return value


def parse_overrides(items: list[str], rules: list[str]) -> dict[str, dict[str, Any]]:
    """`RULE.PARAM=VALUE` strings -> {rule: {param: value}}, each checked against the table."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        rule, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise UserError(f"--set {item}: expected RULE.PARAM=VALUE, e.g. gopher_quality.min_doc_words=30")
        if rule not in RULES:
            raise UserError(f"--set {item}: unknown rule {rule!r} (known: {', '.join(RULES)})")
        if rule not in rules:
            raise UserError(f"--set {item}: rule {rule!r} is not in --rules {','.join(rules)}")
        params = RULES[rule].params
        if name not in params:
            raise UserError(f"--set {item}: {rule} has no parameter {name!r} (known: {', '.join(params)})")
        out.setdefault(rule, {})[name] = _coerce(rule, name, params[name], raw.strip())
    return out


def check_rules(rules: list[str]) -> list[str]:
    """Refuse unknown or repeated rule names (one line naming the flag)."""
    for rule in rules:
        if rule not in RULES:
            raise UserError(f"--rules: unknown rule {rule!r} (known: {', '.join(RULES)})")
    if len(set(rules)) != len(rules):
        raise UserError(f"--rules {','.join(rules)}: a rule is listed twice")
    return rules


def resolved(rules: list[str], overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The full threshold table of the chosen rules, defaults with the overrides applied (the recipe)."""
    return {r: {n: overrides.get(r, {}).get(n, p.default) for n, p in RULES[r].params.items()} for r in rules}


def _kwargs(rule: str, values: dict[str, Any]) -> dict[str, Any]:
    """Our flat parameter names -> the datatrove constructor's arguments."""
    if rule != "gopher_repetition":
        return dict(values)
    kw = {k: v for k, v in values.items() if not k.startswith(("top_", "dup_")) or k.endswith("_frac")}
    kw["top_n_grams"] = tuple((n, values[f"top_{n}_gram"]) for n in TOP_NGRAMS if values[f"top_{n}_gram"] is not None)
    kw["dup_n_grams"] = tuple((n, values[f"dup_{n}_grams"]) for n in DUP_NGRAMS
                              if values[f"dup_{n}_grams"] is not None)
    return kw


def build_filters(table: dict[str, dict[str, Any]], tokenizer: Any = None) -> list[tuple[str, Any]]:
    """Instantiate the datatrove filter of each rule, in the table's order, sharing one tokenizer.

    The tokenizer defaults to `KeepVocabTokenizer` (datatrove's spaCy English tokens, faster);
    pass `"en"` for datatrove's own.
    """
    if tokenizer is None:
        from beyondscale.lab.curate.tokenizer import KeepVocabTokenizer

        tokenizer = KeepVocabTokenizer()
    filters = []
    for rule, values in table.items():
        module, _, cls_name = RULES[rule].cls_path.partition(":")
        cls = getattr(importlib.import_module(module), cls_name)
        filters.append((rule, cls(**_kwargs(rule, values), **RULES[rule].fixed, language=tokenizer)))
    return filters


def apply_filters(text: str, doc_id: str, filters: list[tuple[str, Any]]) -> tuple[str, str | None, str | None]:
    """Run the filters in order: (text after the filters, removing rule or None, its reason).

    C4 removes lines, so later rules see the shortened text, exactly as in FineWeb's pipeline.
    """
    from datatrove.data import Document

    doc = Document(text=text, id=doc_id)
    for rule, filt in filters:
        verdict = filt.filter(doc)
        keep, reason = verdict if isinstance(verdict, tuple) else (verdict, None)  # as datatrove's run() reads it
        if not keep:
            return doc.text, rule, reason or rule
    return doc.text, None, None
