"""Per-item export: the file reproduces the analysis's leaderboard cells, in parquet, csv and jsonl alike.

References: the leaderboard (`api.analyze`, from the store's aggregate `metrics` table, computed by
metrics/ when scoring) and the task file's own labels; queries by pandas and DuckDB over the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from beyondscale import api
from beyondscale.errors import UserError
from beyondscale.results.items import FIXED_NAMES, export_items


@pytest.fixture(scope="module")
def store(tiny_llama, tiny_gpt2, tmp_path_factory) -> Path:
    from conftest import write_mc_task, write_rolling_task

    folder = tmp_path_factory.mktemp("export")
    mc, rolling = write_mc_task(folder / "tasks", n=10), write_rolling_task(folder / "tasks", n=3)
    path = folder / "s.db"
    api.evaluate([f"Llama={tiny_llama}", f"GPT2={tiny_gpt2}"], [str(mc), str(rolling)], store=path,
                 show_progress=False)
    return path


@pytest.fixture(scope="module")
def leaderboard(store) -> pd.DataFrame:
    analysis, _ = api.analyze(store, n_boot=10)
    return analysis.leaderboard.set_index("model")


def test_parquet_mean_acc_reproduces_the_leaderboard(store, leaderboard, tmp_path) -> None:
    out = export_items(store, tmp_path / "items.parquet", "parquet")
    items = pd.read_parquet(out)
    assert len(items) == 2 * 10 + 2 * 3  # one row per (model, task, document)
    assert not items.duplicated(["model_key", "task_key", "doc_id"]).any()
    cells = items[items["task"] == "tiny_mc"].groupby("model")["acc"].mean()
    for model in ("Llama", "GPT2"):
        assert cells[model] == pytest.approx(leaderboard.loc[model, "tiny_mc/acc"], abs=1e-12)
    norm = items[items["task"] == "tiny_mc"].groupby("model")["acc_norm"].mean()
    assert norm["GPT2"] == pytest.approx(_metric(store, "GPT2", "tiny_mc", "acc_norm"), abs=1e-12)
    ppl = items[items["task"] == "tiny_ppl"].groupby("model")[["logprob", "bytes"]].sum()
    bpb = -ppl["logprob"] / ppl["bytes"] / math.log(2)  # the corpus formula docs/per_item_export.md gives
    for model in ("Llama", "GPT2"):
        assert bpb[model] == pytest.approx(_metric(store, model, "tiny_ppl", "bits_per_byte"), rel=1e-9)


def test_duckdb_query_of_the_docs_reproduces_the_leaderboard(store, leaderboard, tmp_path) -> None:
    duckdb = pytest.importorskip("duckdb", reason="duckdb not installed (pip install duckdb)")
    out = export_items(store, tmp_path / "items.parquet", "parquet")
    # the query printed in docs/per_item_export.md
    rows = duckdb.sql(f"""
        SELECT model, avg(acc) AS acc, count(*) AS n FROM read_parquet('{out}')
        WHERE task = 'tiny_mc' AND task_current GROUP BY model ORDER BY model""").fetchall()
    assert [r[0] for r in rows] == ["GPT2", "Llama"] and all(r[2] == 10 for r in rows)
    for model, acc, _ in rows:
        assert acc == pytest.approx(leaderboard.loc[model, "tiny_mc/acc"], abs=1e-12)
    paired = duckdb.sql(f"""
        SELECT a.model AS a, b.model AS b, avg(a.acc - b.acc) AS mean_diff, count(*) AS n
        FROM read_parquet('{out}') a JOIN read_parquet('{out}') b USING (task_key, doc_key)
        WHERE a.task = 'tiny_mc' AND a.model < b.model GROUP BY a.model, b.model""").fetchall()
    assert [(a, b, n) for a, b, _, n in paired] == [("GPT2", "Llama", 10)]
    want = leaderboard.loc["GPT2", "tiny_mc/acc"] - leaderboard.loc["Llama", "tiny_mc/acc"]
    assert paired[0][2] == pytest.approx(want, abs=1e-12)


def test_columns_keys_and_targets(store, tmp_path) -> None:
    import pyarrow.parquet as pq

    out = export_items(store, tmp_path / "items.parquet", "parquet")
    schema = pq.read_schema(out)
    assert tuple(schema.names[: len(FIXED_NAMES)]) == FIXED_NAMES
    assert str(schema.field("doc_id").type) == "int64" and str(schema.field("acc").type) == "double"
    assert schema.field("doc_key").metadata[b"description"].startswith(b"content hash")
    assert schema.metadata[b"beyondscale.items_schema_version"] == b"1"
    items = pd.read_parquet(out)
    mc = items[items["task"] == "tiny_mc"]
    assert (mc["target"] == [str(i % 4) for i in mc["doc_id"]]).all()  # the fixture's labels: i % 4
    assert ((mc["prediction"] == mc["target"]) == mc["correct"]).all()
    assert (mc.groupby("doc_id")["doc_key"].nunique() == 1).all()  # one document, one key, whichever model
    assert mc["doc_key"].nunique() == 10 and mc["task_current"].all()
    ppl = items[items["task"] == "tiny_ppl"]
    assert ppl["prediction"].isna().all() and ppl["acc"].isna().all() and (ppl["logprob"] < 0).all()


def test_csv_and_jsonl_carry_the_same_rows(store, tmp_path) -> None:
    ref = pd.read_parquet(export_items(store, tmp_path / "i.parquet", "parquet"))
    csv = pd.read_csv(export_items(store, tmp_path / "i.csv", "csv"), dtype={"prediction": str, "target": str})
    lines = (export_items(store, tmp_path / "i.jsonl", "jsonl")).read_text(encoding="utf-8").splitlines()
    jsonl = pd.DataFrame([json.loads(line) for line in lines])
    for other in (csv, jsonl):
        assert list(other.columns) == list(ref.columns) and len(other) == len(ref)
        pd.testing.assert_series_equal(other["acc"].astype(float), ref["acc"], check_names=False)
        assert list(other["doc_key"]) == list(ref["doc_key"])


def test_filters_by_model_and_task(store, tmp_path) -> None:
    items = pd.read_parquet(export_items(store, tmp_path / "f.parquet", "parquet", models=["GPT2"], tasks=["tiny_mc"]))
    assert set(items["model"]) == {"GPT2"} and set(items["task"]) == {"tiny_mc"} and len(items) == 10


def test_bad_out_is_one_line_and_nothing_is_changed(store, tmp_path) -> None:
    with pytest.raises(UserError, match=r"--out .*: is a folder") as err:
        export_items(store, tmp_path, "parquet")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="--format xlsx"):
        export_items(store, tmp_path / "x.xlsx", "xlsx")
    kept = tmp_path / "kept.csv"
    kept.write_text("earlier export\n")
    with pytest.raises(UserError, match="no per-item scores match"):
        export_items(store, kept, "csv", models=["no-such-model"])
    assert kept.read_text() == "earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv"]  # no temporary file left behind


def _metric(store: Path, model: str, task: str, metric: str) -> float:
    frames = api.load_store_frames(store)
    s = frames.scores
    return float(s[(s["model"] == model) & (s["task"] == task) & (s["metric"] == metric)]["value"].iloc[0])


def test_versions_older_task_key_is_not_current(tiny_llama, tmp_path) -> None:
    from conftest import write_mc_task

    path = write_mc_task(tmp_path / "v1", n=4)
    api.evaluate([f"Llama={tiny_llama}"], [str(path)], store=tmp_path / "s.db", show_progress=False)
    newer = write_mc_task(tmp_path / "v2", n=5)  # other data: a new task key under the same name
    newer.write_text(newer.read_text() + "metadata:\n  version: 2.0\n")
    api.evaluate([f"Llama={tiny_llama}"], [str(newer)], store=tmp_path / "s.db", show_progress=False)
    items = pd.read_parquet(export_items(tmp_path / "s.db", tmp_path / "v.parquet", "parquet"))
    by_key = items.groupby("task_key").agg(n=("doc_id", "size"), current=("task_current", "first"),
                                           version=("task_version", "first"))
    assert sorted(by_key["n"]) == [4, 5]
    assert by_key.set_index("n").loc[5, "current"] and not by_key.set_index("n").loc[4, "current"]
    assert by_key.set_index("n").loc[5, "version"] == "2.0" and pd.isna(by_key.set_index("n").loc[4, "version"])
