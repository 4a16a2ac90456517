"""`beyondscale quickstart --quantize`: the real models' quantised variants join the study through eval's path.

Fast: a tiny local llama stands in for the real models and a tiny multiple-choice task for the study's tasks;
no ladder is trained (the study's evaluate stage is called on its own).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from beyondscale import api
from beyondscale.errors import UserError
from beyondscale.quickstart.plan import plan_for
from beyondscale.quickstart.spec import quantize_variants, study_spec
from beyondscale.quickstart.study import PRETRAINED_FAMILY, evaluate_models


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEYONDSCALE_CACHE", str(tmp_path / "cache"))


def test_quantize_flag_values() -> None:
    assert quantize_variants(None) == () and quantize_variants("none") == ()  # `make run` is unchanged
    assert quantize_variants("int8") == ("int8",)
    assert quantize_variants("INT8, int4,int8") == ("int8", "int4")
    with pytest.raises(UserError, match="--quantize int3"):
        quantize_variants("int8,int3")


def _rows(store: Path, key: str, task_key: str) -> dict[str, list[float]]:
    with sqlite3.connect(store) as conn:
        return {k: json.loads(r)["logprobs"] for k, r in conn.execute(
            "SELECT item_key, result FROM items WHERE model_key=? AND task_key=?", (key, task_key))}


def test_variants_join_the_study_as_models_of_their_own_paired_on_the_same_items(tiny_llama, mc_task,
                                                                                 tmp_path) -> None:
    store = tmp_path / "study.db"
    spec = study_spec(store=store, work_dir=tmp_path / "work", out=tmp_path / "r.html", plan=plan_for(),
                      device="cpu", real_models={"tiny": f"tiny={tiny_llama}"}, quantize="int8", show_progress=False)
    study = evaluate_models(spec, {"tiny_mc": mc_task}, ladder={})
    assert set(study.keys) == {"tiny", "tiny-int8"} and study.keys["tiny"] != study.keys["tiny-int8"]
    assert "tiny-int8" not in study.specs  # not probed: the probes load the float weights of a spec
    analysis, frames = api.analyze(store, n_boot=20)
    models = frames.models.set_index("model")
    assert models.at["tiny-int8", "quantization"].startswith("torchao:int8")
    assert models.at["tiny-int8", "family"] == models.at["tiny", "family"] == PRETRAINED_FAMILY
    assert models.at["tiny-int8", "bytes_in_memory"] < models.at["tiny", "bytes_in_memory"]
    (task_key,) = set(frames.scores["task_key"])
    fp32, int8 = (_rows(store, study.keys[n], task_key) for n in ("tiny", "tiny-int8"))
    assert set(fp32) == set(int8) and len(fp32) == 12 and fp32 != int8  # same items, rounded weights
    row = analysis.paired[analysis.paired.metric == "acc"].iloc[0]
    assert {row.model_a, row.model_b} == {"tiny", "tiny-int8"} and row.n_items == 12
    # the same code path as `beyondscale eval --quantize int8`: that command finds the variant already done
    again = api.evaluate([f"tiny={tiny_llama}"], [str(mc_task)], store=store, show_progress=False,
                         settings=api.EvalSettings(device="cpu", quantize="int8", family=PRETRAINED_FAMILY))
    assert again.results[0].model_key == study.keys["tiny-int8"]
    assert (again.succeeded, again.skipped) == (0, 1)


def test_bad_quantize_value_exits_2_before_any_stage(tmp_path, monkeypatch, capfd) -> None:
    from beyondscale.cli import main

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "qs.db"
    monkeypatch.setattr(sys, "argv", ["beyondscale", "quickstart", "--store", str(store), "--quantize", "int8,int2",
                                      "--device", "cpu"])
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = capfd.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and "--quantize int2" in lines[0], lines
    assert not store.exists() and not (tmp_path / "out").exists()
