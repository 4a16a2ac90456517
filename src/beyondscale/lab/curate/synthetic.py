"""Generated test corpora: prose from the Python standard library's own docstrings, plus variants.

Used by the tests and `bench/curate_vs_datatrove.py` so that no third-party text is ever copied
into the repository: documents are assembled at run time from the docstrings and sources of the
installed standard library, then perturbed (repeated lines, bullets, ellipses, lorem ipsum,
braces, cookie banners, short lines, code, exact and near copies) so that every rule has work.
"""

from __future__ import annotations

import ast
import json
import random
import sysconfig
from collections.abc import Iterator
from pathlib import Path


def stdlib_sources(limit: int | None = None) -> list[Path]:
    """The standard library's top-level .py files, in name order."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    return files[:limit] if limit else files


def docstrings(path: Path) -> list[str]:
    """Docstrings of a module and its classes and functions (prose written by the Python authors)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef))]
    found = (ast.get_docstring(n) for n in nodes)
    return [d for d in found if d and len(d.split()) >= 8]


def is_prose(text: str) -> bool:
    """Mostly letters and spaces, no doctest: reads like a paragraph rather than code."""
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return letters >= 0.93 * len(text) and ">>>" not in text


def _prose(pool: list[str], rng: random.Random, words: int) -> str:
    parts: list[str] = []
    while sum(len(p.split()) for p in parts) < words:
        parts.append(rng.choice(pool))
    return "\n\n".join(parts)


def _perturb(text: str, kind: str, rng: random.Random) -> str:
    lines = text.splitlines() or [text]
    if kind == "repeat_lines":
        return "\n".join(lines + [rng.choice(lines)] * max(3, len(lines)))
    if kind == "bullets":
        return "\n".join(f"- {line}" for line in lines)
    if kind == "ellipsis":
        return "\n".join(f"{line} ..." for line in lines)
    if kind == "lorem":
        return text + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit, said the placeholder."
    if kind == "brace":
        return text + "\nThe mapping is written as {key: value} in this example."
    if kind == "cookies":
        return "\n".join(f"{line}\nThis site uses cookies, see the privacy policy." for line in lines)
    if kind == "short_lines":
        return "\n".join(w for line in lines for w in line.split())
    if kind == "hashes":
        return " ".join(f"#{w}" for w in text.split())
    return text


KINDS = ("plain", "plain", "plain", "repeat_lines", "bullets", "ellipsis", "lorem", "brace", "cookies",
         "short_lines", "hashes", "code", "exact_copy", "near_copy")


def _near_copy(text: str, rng: random.Random, edits: int = 3) -> str:
    words = text.split(" ")
    for _ in range(edits):
        words[rng.randrange(len(words))] = "changed"
    return " ".join(words)


def documents(seed: int = 0, files: int | None = None) -> Iterator[dict[str, str]]:
    """An endless stream of {"id", "text"} documents of every kind (stop it with islice)."""
    rng = random.Random(seed)
    sources = stdlib_sources(files)
    pool = [d for f in sources for d in docstrings(f) if is_prose(d)]
    recent: list[str] = []
    index = 0
    while True:
        kind = KINDS[index % len(KINDS)]
        if kind == "code":
            text = rng.choice(sources).read_text(encoding="utf-8", errors="replace")[:20000]
        elif kind in ("exact_copy", "near_copy") and recent:
            base = rng.choice(recent)
            text = base if kind == "exact_copy" else _near_copy(base, rng)
        else:
            text = _perturb(_prose(pool, rng, rng.randint(40, 900)), kind, rng)
            recent = (recent + [text])[-50:]
        yield {"id": f"doc-{index:08d}-{kind}", "text": text}
        index += 1


def write_jsonl(path: str | Path, target_bytes: int, seed: int = 0) -> tuple[int, int]:
    """Write documents until the file reaches `target_bytes`; returns (documents, bytes)."""
    count = size = 0
    with open(path, "w", encoding="utf-8") as handle:
        for doc in documents(seed):
            line = json.dumps(doc, ensure_ascii=False) + "\n"
            handle.write(line)
            count += 1
            size += len(line.encode("utf-8"))
            if size >= target_bytes:
                break
    return count, size


def quality_sets(n: int, seed: int) -> tuple[list[str], list[str]]:
    """High: standard-library docstrings. Low: crafted navigation / advert boilerplate."""
    rng = random.Random(seed)
    pool = [d for f in stdlib_sources(120) for d in docstrings(f)]
    high = [" ".join(rng.sample(pool, 3)) for _ in range(n)]
    junk = ["home", "login", "click", "here", "buy", "now", "cheap", "free", "shipping", "deal", "offer", "sale",
            "subscribe", "menu", "cart", "best", "price", "win", "prize", "limited"]
    low = [" | ".join(" ".join(rng.choice(junk) for _ in range(rng.randint(1, 4))) + f" {rng.randint(1, 999)}"
                      for _ in range(rng.randint(20, 60))) for _ in range(n)]
    return high, low


def main() -> None:
    """`python -m beyondscale.lab.curate.synthetic OUT.jsonl MB [SEED]`: write a generated corpus."""
    import sys

    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m beyondscale.lab.curate.synthetic OUT.jsonl MB [SEED]")
    count, size = write_jsonl(sys.argv[1], int(float(sys.argv[2]) * 1e6), int(sys.argv[3]) if len(sys.argv) == 4 else 0)
    print(f"wrote {count} documents, {size / 1e6:.1f} MB to {sys.argv[1]}")


if __name__ == "__main__":
    main()
