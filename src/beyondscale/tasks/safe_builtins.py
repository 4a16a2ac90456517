"""The only code a task file can reach: named document processors and Jinja filters.

Task YAML files never run code (`!function` is refused). Where lm-evaluation-harness tasks call a
Python helper, our copy of the task names one of the functions registered here instead. Each one is
a line-for-line port of the lm-eval helper it replaces, so prompts stay byte-identical.

Bump `BUILTINS_VERSION` whenever a function here changes what it returns: it is part of every
task's `spec_hash`, so stored results made with the old behaviour are not reused.
"""

from __future__ import annotations

import re
from collections.abc import Callable

BUILTINS_VERSION = "1"

Doc = dict
ProcessDocs = Callable[[list[Doc]], list[Doc]]


# --- hellaswag (lm_eval/tasks/hellaswag/utils.py) -------------------------------------------------


def _hellaswag_preprocess(text: str) -> str:
    text = text.strip()
    # NOTE: Brackets are artifacts of the WikiHow dataset portion of HellaSwag.
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def hellaswag_process_docs(docs: list[Doc]) -> list[Doc]:
    """lm-eval's hellaswag `process_docs`: adds `query`, `choices`, `gold` (like `Dataset.map`)."""
    out = []
    for doc in docs:
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        new = {
            "query": _hellaswag_preprocess(doc["activity_label"] + ": " + ctx),
            "choices": [_hellaswag_preprocess(ending) for ending in doc["endings"]],
            "gold": int(doc["label"]),
        }
        out.append({**doc, **new})
    return out


PROCESS_DOCS: dict[str, ProcessDocs] = {
    "hellaswag_process_docs": hellaswag_process_docs,
}


def wikitext_count_text(doc: Doc) -> str:
    """lm-eval's wikitext `process_results` counts words and bytes on the original `page`, not on the
    detokenized text that is scored; this returns the text to count on."""
    return str(doc["page"])


# `process_results` names: which text the rolling perplexities' word and byte counts come from.
PROCESS_RESULTS: dict[str, Callable[[Doc], str]] = {
    "wikitext_process_results": wikitext_count_text,
}


# --- Jinja filters ---------------------------------------------------------------------------------


def regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    """lm-eval's `regex_replace` Jinja filter (lm_eval/utils.py)."""
    return re.sub(pattern, repl, string, count=count)


def wikitext_detokenizer(string: str) -> str:
    """lm-eval's wikitext detokenizer (lm_eval/tasks/wikitext/preprocess_wikitext.py), as a filter.

    lm-eval's version takes the doc and reads `doc["page"]`; use it as `{{ page | wikitext_detokenizer }}`.
    """
    # contractions
    string = string.replace("s '", "s'")
    string = re.sub(r"/' [0-9]/", r"/'[0-9]/", string)
    # number separators
    string = string.replace(" @-@ ", "-")
    string = string.replace(" @,@ ", ",")
    string = string.replace(" @.@ ", ".")
    # punctuation
    string = string.replace(" : ", ": ")
    string = string.replace(" ; ", "; ")
    string = string.replace(" . ", ". ")
    string = string.replace(" ! ", "! ")
    string = string.replace(" ? ", "? ")
    string = string.replace(" , ", ", ")
    # double brackets
    string = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", string)
    string = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", string)
    string = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", string)
    string = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', string)
    string = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", string)
    # miscellaneous
    string = string.replace("= = = =", "====")
    string = string.replace("= = =", "===")
    string = string.replace("= =", "==")
    string = string.replace(" " + chr(176) + " ", chr(176))
    string = string.replace(" \n", "\n")
    string = string.replace("\n ", "\n")
    string = string.replace(" N ", " 1 ")
    string = string.replace(" 's", "'s")
    return string


def winogrande_prefix(sentence: str, option: str) -> str:
    """Partial-evaluation context of winogrande: the sentence up to the blank, filled with `option`."""
    return sentence[: sentence.index("_")] + option


def winogrande_suffix(sentence: str) -> str:
    """Partial-evaluation target of winogrande: the sentence after the blank, stripped."""
    return sentence[sentence.index("_") + 1 :].strip()


JINJA_FILTERS: dict[str, Callable[..., object]] = {
    "regex_replace": regex_replace,
    "wikitext_detokenizer": wikitext_detokenizer,
    "winogrande_prefix": winogrande_prefix,
    "winogrande_suffix": winogrande_suffix,
}


def process_docs_names() -> list[str]:
    """Names a task file may give as `process_docs`."""
    return sorted(PROCESS_DOCS)
