"""`beyondscale curate` end to end: output layout, hashes, reuse, refusals, scorer, hub streaming.

Decisions are checked against datatrove's own filter classes run directly in the test (FineWeb's
order and settings), and hashes against a sha256 computed here from the files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from beyondscale import cli
from beyondscale.lab.curate.synthetic import documents


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as stop:
        code = stop.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return list(itertools.islice(documents(seed=3, files=60), 70))


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def datatrove_fate(text: str) -> str | None:
    """The rule that removes `text` in FineWeb's pipeline, by datatrove's classes called directly."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    doc = Document(text=text, id="x")
    steps = [("gopher_repetition", GopherRepetitionFilter()), ("gopher_quality", GopherQualityFilter()),
             ("c4", C4QualityFilter(filter_no_terminal_punct=False)), ("fineweb", FineWebQualityFilter())]
    for name, step in steps:
        verdict = step.filter(doc)
        if verdict is not True and not (isinstance(verdict, tuple) and verdict[0]):
            return name
    return None


def test_layout_summary_and_decisions_match_datatrove(tmp_path, monkeypatch, capsys, docs):
    source = write_jsonl(tmp_path / "in.jsonl", docs)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "curate", str(source), "--out", str(out),
                                   "--dedup", "exact", "--workers", "1", "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert {"kept", "dropped", "reasons", "out", "data_hash", "recipe_hash", "input_hash"} <= set(summary)
    assert summary["kept"] + summary["dropped"] == len(docs) and summary["out"] == str(out.resolve())
    assert sum(summary["reasons"].values()) == summary["dropped"]
    assert list(summary["reasons"]) == ["gopher_repetition", "gopher_quality", "c4", "fineweb", "dedup"]
    kept_bytes = b"".join((out / "kept" / name).read_bytes() for name in summary["kept_files"])
    assert hashlib.sha256(kept_bytes).hexdigest() == summary["data_hash"]
    assert json.loads((out / "summary.json").read_text()) == summary
    fate = {}
    for rule, count in summary["reasons"].items():
        lines = (out / "removed" / f"{rule}.jsonl").read_text().splitlines() if count else []
        assert len(lines) == count
        fate.update({json.loads(line)["id"]: rule for line in lines})
    kept_ids = [json.loads(line)["id"] for line in kept_bytes.decode().splitlines()]
    fate.update({i: None for i in kept_ids})
    expected = {d["id"]: datatrove_fate(d["text"]) for d in docs}
    assert {i: f for i, f in fate.items() if f != "dedup"} == {i: f for i, f in expected.items()
                                                                if fate.get(i) != "dedup"}
    assert summary["kept"] > 0 and summary["reasons"]["gopher_quality"] > 0


def test_rerun_reuses_and_another_run_is_refused_unless_overwrite(tmp_path, monkeypatch, capsys, docs):
    source = write_jsonl(tmp_path / "in.jsonl", docs[:30])
    out = tmp_path / "out"
    args = ["curate", str(source), "--out", str(out), "--workers", "1", "--json"]
    first = json.loads(run_cli(monkeypatch, capsys, *args)[1])
    before = folder_state(out)
    again = json.loads(run_cli(monkeypatch, capsys, *args)[1])
    assert again["reused"] is True and again["data_hash"] == first["data_hash"] and folder_state(out) == before
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args, "--rules", "fineweb")
    assert code == 2 and stdout == "" and "--overwrite" in stderr and len(stderr.strip().splitlines()) == 1
    assert folder_state(out) == before
    code, stdout, _ = run_cli(monkeypatch, capsys, *args, "--rules", "fineweb", "--overwrite")
    assert code == 0 and json.loads(stdout)["recipe"]["rules"] == ["fineweb"]


def test_two_workers_give_the_same_output_as_one(tmp_path, monkeypatch, capsys, docs):
    source = write_jsonl(tmp_path / "in.jsonl", docs)
    one = json.loads(run_cli(monkeypatch, capsys, "curate", str(source), "--out", str(tmp_path / "a"),
                             "--workers", "1", "--json")[1])
    two = json.loads(run_cli(monkeypatch, capsys, "curate", str(source), "--out", str(tmp_path / "b"),
                             "--workers", "2", "--json")[1])
    assert one["data_hash"] == two["data_hash"] and one["reasons"] == two["reasons"]


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    write_jsonl(tmp / "ok.jsonl", [{"id": "a", "text": "fine"}])
    (tmp / "empty.jsonl").write_text("")
    (tmp / "bad.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n{not json\n')
    (tmp / "notext.jsonl").write_text('{"text": "a"}\n{"body": "b"}\n')
    (tmp / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    (tmp / "latin1.jsonl").write_bytes(b'{"text": "a"}\n{"text": "caf\xe9"}\n')
    ok = str(tmp / "ok.jsonl")
    return [
        ([str(tmp / "empty.jsonl")], "empty input"),
        ([str(tmp / "bad.jsonl")], "bad.jsonl:3: not valid JSON"),
        ([str(tmp / "notext.jsonl")], "notext.jsonl:2: no 'text' field"),
        ([str(tmp / "latin1.txt")], "latin1.txt: not UTF-8"),
        ([str(tmp / "latin1.jsonl")], "latin1.jsonl:2: not UTF-8"),
        ([str(tmp / "missing.jsonl")], "no such file"),
        ([ok, "--set", "fineweb.line_punct_thr=1.5"], "out of range"),
        ([ok, "--minhash-threshold", "1.5"], "--minhash-threshold 1.5: out of range"),
        ([ok, "--scorer", str(tmp / "ok.jsonl"), "--keep-fraction", "0"], "--keep-fraction 0.0: out of range"),
        ([ok, "--rules", "gopher,c4"], "unknown rule 'gopher'"),
        ([ok, "--dedup", "fuzzy"], "--dedup fuzzy"),
    ]


def test_bad_input_is_one_line_exit_2_and_nothing_is_overwritten(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    ok = write_jsonl(tmp_path / "good.jsonl", [{"id": "a", "text": "fine"}])
    assert run_cli(monkeypatch, capsys, "curate", str(ok), "--out", str(out), "--workers", "1", "--json")[0] == 0
    before = folder_state(out)
    for args, fragment in _bad_inputs(tmp_path):
        code, stdout, stderr = run_cli(monkeypatch, capsys, "curate", *args, "--out", str(out), "--workers", "1",
                                       "--overwrite")
        assert code == 2, (args, stderr)
        assert fragment in stderr and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
        assert folder_state(out) == before, args
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_scorer_keep_fraction_and_threshold(tmp_path, monkeypatch, capsys):
    from beyondscale.lab.curate.scorer import load_scorer
    from beyondscale.lab.curate.synthetic import quality_sets as high_and_low

    high, low = high_and_low(30, seed=4)
    write_jsonl(tmp_path / "high.jsonl", [{"text": t} for t in high])
    write_jsonl(tmp_path / "low.jsonl", [{"text": t} for t in low])
    scorer = tmp_path / "q.safetensors"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "curate-scorer", "--high", str(tmp_path / "high.jsonl"),
                                   "--low", str(tmp_path / "low.jsonl"), "--out", str(scorer), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["heldout_accuracy"] >= 0.9
    mixed_high, mixed_low = high_and_low(10, seed=5)
    mixed = [{"id": f"d{i}", "text": t} for i, t in enumerate(mixed_high[:7] + mixed_low)]
    source = write_jsonl(tmp_path / "mixed.jsonl", mixed)
    scores = dict(zip([d["id"] for d in mixed], load_scorer(scorer).score([d["text"] for d in mixed]),
                      strict=True))
    base = ["curate", str(source), "--rules", "none", "--dedup", "none", "--scorer", str(scorer), "--workers",
            "1", "--json"]
    frac = json.loads(run_cli(monkeypatch, capsys, *base, "--out", str(tmp_path / "f"), "--keep-fraction",
                              "0.25")[1])
    kept = [json.loads(line)["id"] for line in (tmp_path / "f/kept/part-00000.jsonl").read_text().splitlines()]
    assert frac["kept"] == math.ceil(0.25 * len(mixed)) == len(kept)
    assert sorted(kept) == sorted(sorted(scores, key=lambda i: -scores[i])[:len(kept)])
    assert sum(frac["score_histogram"]["counts"]) == len(mixed)
    code, stdout, stderr = run_cli(monkeypatch, capsys, *base, "--out", str(tmp_path / "t"), "--score-threshold",
                                   "0.5", "--workers", "2")  # the pool path: scorer in worker processes
    assert code == 0, stderr
    thr = json.loads(stdout)
    assert thr["workers"] == 2
    assert thr["kept"] == sum(s >= 0.5 for s in scores.values()) and thr["reasons"]["scorer"] == thr["dropped"]


def test_folder_text_files_and_streamed_hub_dataset(tmp_path, monkeypatch, capsys, docs):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(docs[0]["text"], encoding="utf-8")
    (folder / "sub" / "b.md").write_text(docs[1]["text"], encoding="utf-8")
    (folder / ".hidden").write_bytes(b"\xff\xfe")
    code, stdout, _ = run_cli(monkeypatch, capsys, "curate", str(folder), "--out", str(tmp_path / "o1"),
                              "--rules", "none", "--workers", "1", "--json")
    assert code == 0 and json.loads(stdout)["kept"] == 2
    ids = [json.loads(x)["id"] for x in (tmp_path / "o1/kept/part-00000.jsonl").read_text().splitlines()]
    assert ids == ["a.txt", "sub/b.md"]
    hub = tmp_path / "hubdata"
    hub.mkdir()
    write_jsonl(hub / "train.jsonl", docs[:20])
    local = json.loads(run_cli(monkeypatch, capsys, "curate", str(hub / "train.jsonl"), "--out",
                               str(tmp_path / "o2"), "--workers", "1", "--json")[1])
    streamed = json.loads(run_cli(monkeypatch, capsys, "curate", f"hub:{hub}", "--out", str(tmp_path / "o3"),
                                  "--workers", "1", "--json")[1])
    assert streamed["data_hash"] == local["data_hash"] and streamed["input_hash"] == local["input_hash"]


def test_rules_table_lists_every_threshold(monkeypatch, capsys):
    from beyondscale.lab.curate.rules import RULES

    code, stdout, _ = run_cli(monkeypatch, capsys, "curate-rules", "--json")
    rows = {(r["rule"], r["param"]): r["default"] for r in json.loads(stdout)}
    assert code == 0 and rows == {(rule, name): p.default for rule, spec in RULES.items()
                                  for name, p in spec.params.items()}
    assert rows[("gopher_quality", "min_doc_words")] == 50 and rows[("c4", "filter_no_terminal_punct")] is False
