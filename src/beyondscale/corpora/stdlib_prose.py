"""Offline English prose from the Python installation itself (not copied into this repository).

Every machine that can run beyondscale has the Python standard library on disk, and its docstrings
plus the `pydoc_data.topics` help texts are a few megabytes of edited English technical prose.
This module turns them into a deterministic list of `Document`s:

- stdlib `*.py` files are listed in sorted order (test suites, site-packages and bundled wheels
  excluded) and parsed with `ast` -- never imported -- to read module, class and function
  docstrings;
- `pydoc_data.topics.topics` (the language reference text behind `help("if")`) is split into
  sections at its underlined headings;
- each text is cut into paragraphs; paragraphs that look like code, doctests, tables, reST
  directives or argument lists are dropped, reST markup is reduced to plain words, whitespace is
  collapsed; a document keeps only its prose paragraphs, joined by single spaces;
- exact duplicates are dropped (first in sorted order wins).

The text depends on the Python version (docstrings change between releases), so `Corpus` carries
`python_version` and a `content_hash` that task builders record in their metadata.

Splits are by *group* (a source file, or a help topic), never by sentence: `assign_group` maps a
group to a task pool with a seeded hash, so no document -- not even a sibling docstring from the
same module -- is shared between two tasks' evaluation sets, and adding or removing one module
does not move any other module to another pool.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
import re
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "Corpus",
    "Document",
    "assign_group",
    "is_prose_sentence",
    "load_corpus",
    "split_sentences",
    "stable_unit",
    "stdlib_files",
]

# Folder names under the stdlib dir whose files are not documentation prose (or not stdlib).
_SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "_bundled", "lib2to3"}
)
_STOPWORDS = frozenset(
    "the a an of to is are be in on for it that this with as by or and if not which when from "
    "at was can will may must should its their they them these those there has have been than "
    "into no any all each other such only also but so more one".split()
)
_ROLE = re.compile(r":[a-zA-Z:]+:`~?(?:[^`<]*?<)?([^`<>]+?)>?`")  # :func:`~os.path.join` -> os.path.join
_LITERAL = re.compile(r"``([^`]+)``")
_BACKTICK = re.compile(r"`([^`]+)`")
_HEADING_RULE = re.compile(r"^([*=\-~^#+])\1{2,}\s*$")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|etc|cf|vs|viz|approx|resp|Mr|Mrs|Dr|No|Fig|Sec|al)\.|\b[A-Z]\.)$")


@dataclass(frozen=True)
class Document:
    """One prose text. `group` is the split unit (source file or help topic)."""

    doc_id: str
    group: str
    kind: str  # "docstring" | "topic"
    text: str


@dataclass(frozen=True)
class Corpus:
    """All documents in a fixed order, with what the text depends on."""

    documents: tuple[Document, ...]
    python_version: str
    content_hash: str


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) that depends only on `parts` (hash-based: same on every Python)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_group(group: str, seed: int, pools: tuple[tuple[str, float], ...]) -> str:
    """Pool of a group: seeded hash of the group name against cumulative pool weights."""
    u = stable_unit("split", seed, group)
    total = sum(w for _, w in pools)
    acc = 0.0
    for name, weight in pools:
        acc += weight / total
        if u < acc:
            return name
    return pools[-1][0]


def _plain(text: str) -> str:
    """reST markup -> plain words, whitespace collapsed."""
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _BACKTICK.sub(r"\1", text)
    text = text.replace("::", ":")
    return " ".join(text.split())


def _is_prose_paragraph(raw: str) -> bool:
    """Heuristic: a paragraph of mostly-English sentences, not code, tables or argument lists."""
    lines = raw.splitlines()
    if not lines:
        return False
    if any(line[:1].isspace() for line in lines):  # indented: literal block or definition body
        return False
    first = lines[0].lstrip()
    if first.startswith((">>>", "...", ".. ", "$ ", "- ", "* ", "+", "|", "#", "%")):
        return False
    if any(_HEADING_RULE.match(line) for line in lines):
        return False
    if sum(1 for line in lines if re.match(r"^\S+\s+--\s", line) or re.match(r"^\w+\s*:\s", line)) > 1:
        return False  # "name -- description" / "name: description" lists
    text = _plain(raw)
    tokens = text.split()
    if len(tokens) < 8:
        return False
    words = [t.strip(".,;:!?()\"'").lower() for t in tokens]
    alpha = sum(1 for w in words if w.isalpha())
    stop = sum(1 for w in words if w in _STOPWORDS)
    if alpha / len(tokens) < 0.75 or stop / len(tokens) < 0.18:
        return False
    allowed = sum(1 for c in text if c.isascii() and (c.isalnum() or c in " .,;:'\"()-!?/"))
    if allowed / len(text) < 0.95:
        return False
    return text[-1] in ".:!?)\""


def _prose(raw: str) -> str:
    """The prose paragraphs of a raw text, joined by single spaces."""
    paragraphs = re.split(r"\n\s*\n", raw.strip())
    return " ".join(_plain(p) for p in paragraphs if _is_prose_paragraph(p))


def split_sentences(text: str) -> list[str]:
    """Sentences of a normalised text (splits after . ! ? before a capital; keeps 'e.g.' etc.)."""
    out: list[str] = []
    for piece in _SENT_SPLIT.split(text):
        if out and _ABBREV.search(out[-1]):
            out[-1] = out[-1] + " " + piece
        else:
            out.append(piece)
    return [s.strip() for s in out if s.strip()]


def is_prose_sentence(sentence: str, min_chars: int = 40, max_chars: int = 220) -> bool:
    """A sentence fit to be a next-sentence target or distractor: plain, complete, moderate length."""
    if not (min_chars <= len(sentence) <= max_chars):
        return False
    if not sentence[0].isupper() or sentence[-1] != ".":
        return False
    if sentence.count("(") != sentence.count(")") or sentence.count('"') % 2:
        return False
    if re.search(r":\s+[A-Z]", sentence):  # a colon that introduced a dropped code block
        return False
    tokens = sentence.split()
    return len(tokens) >= 6 and sum(1 for t in tokens if t.strip(".,;:()\"'").isalpha()) / len(tokens) >= 0.8


def stdlib_files(root: Path) -> list[Path]:
    """The stdlib's .py files in sorted order (tests, site-packages and bundled wheels left out)."""
    files = [p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & _SKIP_DIRS)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _docstrings(tree: ast.Module) -> list[tuple[str, str]]:
    """(qualified name, cleaned docstring) for the module, its classes and functions, in source order."""
    out: list[tuple[str, str]] = []

    def visit(node: ast.AST, name: str) -> None:
        doc = ast.get_docstring(node, clean=True)  # type: ignore[arg-type]
        if doc:
            out.append((name, doc))
        for child in getattr(node, "body", []):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{name}.{child.name}" if name else child.name)

    visit(tree, "")
    return out


def _topic_sections(key: str, text: str) -> list[tuple[str, str]]:
    """Split a help topic at underlined headings into (section id, raw text)."""
    lines = text.splitlines()
    sections: list[tuple[str, list[str]]] = [("0", [])]
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and _HEADING_RULE.match(lines[i + 1]):
            sections.append((str(len(sections)), []))
            i += 2
            continue
        sections[-1][1].append(lines[i])
        i += 1
    return [(sid, "\n".join(body)) for sid, body in sections if any(s.strip() for s in body)]


def _merge_groups(docs: list[Document]) -> list[Document]:
    """Put groups that share a sentence into one group (e.g. shutil and distutils' copied docs).

    Union-find over groups; a merged group is named after its smallest member, so the result does
    not depend on the order of discovery.
    """
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.setdefault(g, g) != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    owner: dict[str, str] = {}
    for doc in docs:
        for sent in split_sentences(doc.text):
            if len(sent) < 40:
                continue
            key = sent.lower()
            if key in owner:
                a, b = find(owner[key]), find(doc.group)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = doc.group
    return [Document(d.doc_id, find(d.group), d.kind, d.text) for d in docs]


@lru_cache(maxsize=2)
def load_corpus(stdlib_dir: str | None = None) -> Corpus:
    """Extract the corpus (about 5 s; cached per process). `stdlib_dir` defaults to this Python's."""
    root = Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    docs: list[Document] = []
    seen: set[str] = set()

    def add(doc_id: str, group: str, kind: str, raw: str) -> None:
        text = _prose(raw)
        if len(text) < 120 or text in seen:
            return
        seen.add(text)
        docs.append(Document(doc_id, group, kind, text))

    for path in stdlib_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_bytes(), filename=rel)
        except (SyntaxError, ValueError):
            continue
        for name, doc in _docstrings(tree):
            add(f"stdlib:{rel}:{name}" if name else f"stdlib:{rel}", f"stdlib:{rel}", "docstring", doc)
    try:
        from pydoc_data.topics import topics  # plain data module: one dict of strings
    except ImportError:  # some distributions split it out; the hash records the difference
        topics = {}
    for key in sorted(topics):
        for sid, raw in _topic_sections(key, topics[key]):
            add(f"topic:{key}:{sid}", f"topic:{key}", "topic", raw)

    docs = _merge_groups(docs)
    blob = json.dumps([[d.doc_id, d.text] for d in docs], ensure_ascii=False).encode("utf-8")
    return Corpus(tuple(docs), platform.python_version(), hashlib.sha256(blob).hexdigest())
