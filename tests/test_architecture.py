"""The floors of ARCHITECTURE.md (docs/ARCHITECTURE.md; keep the two alike), held against the code: every import (function-local ones included) runs
from a room to one on its own floor or below, and no circle of imports spans two packages."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "beyondscale"

# Top floor first. A package may import packages on its own floor or any floor below it.
FLOORS: list[set[str]] = [
    {"cli"},
    {"api"},
    {"quickstart"},
    {"lab", "interpret", "bias"},
    {"evaluator", "results", "track"},
    {"work", "executors"},
    {"engine", "tasks", "measure", "metrics", "report", "corpora"},
    {"analysis", "models"},
    {"store"},
    {"errors", "keys", "logs", "_quiet_deps", "__init__"},
]
FLOOR_OF = {room: len(FLOORS) - i for i, rooms in enumerate(FLOORS) for room in rooms}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "beyondscale" and len(parts) > 1 else ("__init__" if module == "beyondscale" else None)


def _imports(path: Path) -> set[str]:
    """Every beyondscale module this file imports, anywhere in it (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "beyondscale")
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("beyondscale")}


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _edges() -> dict[str, set[str]]:
    return {_module_of(p): _imports(p) for p in SRC.rglob("*.py")}


def test_every_package_has_a_floor():
    rooms = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if not p.name.startswith("__pycache__")
             and (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert rooms - set(FLOOR_OF) == set(), "a new package needs a floor in ARCHITECTURE.md and here"


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in edges.items():
        here = FLOOR_OF[_room(module)]
        found += [f"{module} -> {t}" for t in targets if _room(t) in FLOOR_OF and FLOOR_OF[_room(t)] > here]
    return sorted(found)


def cross_package_circles(edges: dict[str, set[str]]) -> list[str]:
    """Packages from which an import path leads out of the package and back into it."""
    rooms: dict[str, set[str]] = {}
    for module, targets in edges.items():
        rooms.setdefault(_room(module), set()).update(_room(t) for t in targets if _room(t) != _room(module))
    circles = []
    for start in rooms:
        stack, visited = [start], set()
        while stack:
            for nxt in rooms.get(stack.pop(), ()):
                if nxt == start:
                    circles.append(start)
                elif nxt not in visited:
                    visited.add(nxt)
                    stack.append(nxt)
    return sorted(set(circles))


def test_no_import_runs_up_a_floor():
    assert upward_imports(_edges()) == []


def test_no_circle_spans_two_packages():
    assert cross_package_circles(_edges()) == []


def test_the_checks_catch_a_planted_upward_import_and_circle():
    planted = {"beyondscale.evaluator.run": {"beyondscale.api"}, "beyondscale.store.db": {"beyondscale.errors"},
               "beyondscale.lab.a": {"beyondscale.bias.b"}, "beyondscale.bias.b": {"beyondscale.lab.a"}}
    assert upward_imports(planted) == ["beyondscale.evaluator.run -> beyondscale.api"]
    assert cross_package_circles(planted) == ["bias", "lab"]
