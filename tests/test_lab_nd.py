"""A sweep at several token budgets varies both N and D; the ladder then fits L(N, D) (as `fit --data` does),
gives the compute-optimal allocation and the inference-aware optimum (Sardana et al. 2024), each checked here
against planted constants or a brute-force search; a one-budget ladder says why it has no L(N, D) fit."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest

from _lab_helpers import forbid_training, run_cli, write_corpus
from _lab_helpers import one_thread as _lab_one_thread

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)

PLANTED = {"E": 1.8, "A": 60.0, "alpha": 0.45, "B": 300.0, "beta": 0.38}


def _law(n, d, c=PLANTED):
    return c["E"] + c["A"] * n ** -c["alpha"] + c["B"] * d ** -c["beta"]


def _run(name, params, tokens, loss, *, arch="dense", data="raw"):
    return {"model": name, "model_key": name, "arch": arch, "data_variant": data, "data_hash": f"h-{data}",
            "teacher": None, "params_total": params, "params_active": params, "tokens": tokens,
            "train_flops": 6.0 * params * tokens, "context_length": 32, "val_loss": loss, "train_loss": loss - 0.1,
            "generalisation_gap": 0.1, "memorised_share": None, "memorised": None, "memorisation_samples": None,
            "wall_s": params * tokens / 1e9, "val_set": "A"}


def _planted_runs(budgets=(1e5, 2e5, 4e5)):
    sizes = (6e4, 1.2e5, 2.5e5, 5e5, 1e6)
    return pd.DataFrame([_run(f"dense-{i}-{int(t)}", n, t, _law(n, t)) for t in budgets for i, n in enumerate(sizes)])


@pytest.fixture(scope="module")
def planted():
    from beyondscale.analysis.ladder import ladder_from_runs

    return ladder_from_runs(_planted_runs(), n_boot=200)


def test_ladder_fit_recovers_planted_constants(planted):
    nd = planted.main.nd
    assert nd is not None and planted.main.nd_note == ""
    assert (nd.n_points, nd.sizes, nd.budgets) == (15, 5, 3)
    for name, value in PLANTED.items():
        assert nd.constants[name] == pytest.approx(value, rel=0.02), name
        lo, hi = nd.fit.ci[name]  # exact points: the bootstrap refits land on the same constants
        assert lo - 1e-9 * abs(lo) <= nd.constants[name] <= hi + 1e-9 * abs(hi)


def test_allocation_is_the_argmin_of_the_fitted_law_at_each_compute(planted):
    nd = planted.main.nd
    c = nd.constants
    flops = 6.0 * _planted_runs()["params_total"] * _planted_runs()["tokens"]
    assert nd.allocation["C_6ND"].iloc[0] == pytest.approx(flops.min()) and \
        nd.allocation["C_6ND"].iloc[-1] == pytest.approx(flops.max())
    for _, row in nd.allocation.iterrows():
        ns = np.geomspace(1e2, 1e9, 200001)  # brute force along C = 6 N D
        best_n = ns[np.argmin(_law(ns, row["C_6ND"] / 6.0 / ns, c))]
        assert row["N_opt"] == pytest.approx(best_n, rel=1e-3)
        assert row["D_opt"] == pytest.approx(row["C_6ND"] / 6.0 / row["N_opt"], rel=1e-9)
        assert row["N_opt_low"] * (1 - 1e-9) <= row["N_opt"] <= row["N_opt_high"] * (1 + 1e-9)


def _tokens_for(n, loss, c):
    """Bisection on D (no closed form): the training tokens n parameters need to reach `loss`."""
    if _law(n, 1e40, c) >= loss:
        return math.inf
    lo, hi = 1.0, 1e40
    for _ in range(300):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if _law(n, mid, c) > loss else (lo, mid)
    return hi


def test_inference_optimum_equals_a_brute_force_search_over_n(planted):
    nd = planted.main.nd
    c = nd.constants
    best = planted.main.dense.sort_values("val_loss").iloc[0]
    assert nd.best == best["model"] and nd.target_loss == best["val_loss"]
    assert nd.inference_assumed and nd.inference_tokens == 100 * best["tokens"]
    ns = np.geomspace(1e3, 1e9, 6001)
    totals = [6 * n * _tokens_for(n, nd.target_loss, c) + 2 * n * nd.inference_tokens for n in ns]
    i = int(np.argmin(totals))
    opt = nd.inference_optimal
    assert opt["params"] == pytest.approx(ns[i], rel=0.01)
    assert opt["total_flops"] == pytest.approx(totals[i], rel=1e-4) and opt["total_flops"] <= totals[i] * (1 + 1e-9)
    # the Chinchilla-optimal model of the same loss: on the loss, and compute-optimal for its own 6 N D
    chin = nd.chinchilla
    assert _law(chin["params"], chin["train_tokens"], c) == pytest.approx(nd.target_loss, rel=1e-9)
    budget = 6 * chin["params"] * chin["train_tokens"]
    ns_c = np.geomspace(chin["params"] / 10, chin["params"] * 10, 200001)
    assert ns_c[np.argmin(_law(ns_c, budget / 6 / ns_c, c))] == pytest.approx(chin["params"], rel=1e-3)
    assert opt["params"] < chin["params"] and opt["total_flops"] < chin["total_flops"]  # serving favours smaller


def test_verdict_and_report_section_state_the_fit_and_the_saving(planted):
    from beyondscale.analysis.findings import LadderNDLaw
    from beyondscale.analysis.ladder import ladder_findings
    from beyondscale.analysis.wording import word
    from beyondscale.report.lab_sections import ladder_sections

    found = [f for f in ladder_findings(planted) if isinstance(f, LadderNDLaw)]
    assert len(found) == 1
    line = word(found[0])
    nd = planted.main.nd
    saved = 1 - nd.inference_optimal["total_flops"] / nd.chinchilla["total_flops"]
    assert "L(N, D) = E + A·N^-α + B·D^-β (N = total parameters)" in line
    assert f"α = {nd.fit.alpha:.3g}" in line and f"β = {nd.fit.beta:.3g}" in line
    assert f"{100 * saved:.1f}% saved" in line and "(assumed: 100× its training tokens)" in line
    assert f"E = {nd.fit.E:.3g};" in line  # the planted floor (1.8) is measured, so no 'near zero' caveat
    import dataclasses

    assert "E = 1e-11 (near zero: these runs are too far above their floor" in word(
        dataclasses.replace(found[0], E=1e-11))
    section = next(s for s in ladder_sections(planted) if s["title"].startswith("L(N, D)"))
    frame = section["frames"]["inference-aware optimum vs Chinchilla-optimal, same loss"]
    assert frame["saved_vs_chinchilla"].iloc[1] == pytest.approx(saved)
    assert "an assumption" in section["text"]
    alloc = nd.allocation  # the planted ladder's optima lie below its sizes: said, not hidden
    outside = (alloc["N_opt"] < 6e4) | (alloc["N_opt"] > 1e6) | (alloc["D_opt"] < 1e5) | (alloc["D_opt"] > 4e5)
    assert list(alloc["extrapolated"]) == list(outside) and outside.iloc[-1]
    assert "the compute-optimal model, the inference-aware optimum and the Chinchilla-optimal one lie outside" in line


def test_served_tokens_can_be_given_and_are_then_not_an_assumption():
    from beyondscale.analysis.ladder import ladder_from_runs

    nd = ladder_from_runs(_planted_runs(), n_boot=50, inference_tokens=1e9).main.nd
    assert nd.inference_tokens == 1e9 and not nd.inference_assumed
    assert nd.inference_optimal["inference_flops"] == pytest.approx(2 * nd.inference_optimal["params"] * 1e9)


def test_multipliers_use_the_alternatives_budget_alone():
    """At other budgets the same FLOPs buy other losses: L(C) and the multipliers keep to the alternatives' budget,
    so they equal those of a ladder holding that budget's dense rungs only."""
    from beyondscale.analysis.ladder import ladder_from_runs

    runs = _planted_runs()
    moe = _run("moe", 1.2e5, 2e5, _law(3e5, 2e5), arch="moe")
    both = ladder_from_runs(pd.concat([runs, pd.DataFrame([moe])], ignore_index=True), n_boot=100).main
    one = ladder_from_runs(pd.concat([runs[runs["tokens"] == 2e5], pd.DataFrame([moe])], ignore_index=True),
                           n_boot=100).main
    assert both.lc_tokens == 2e5 and one.lc_tokens is None and both.nd is not None and one.nd is None
    assert (both.fit.E, both.fit.A, both.fit.alpha) == pytest.approx((one.fit.E, one.fit.A, one.fit.alpha))
    assert both.worth.loc[0, "multiplier"] == pytest.approx(one.worth.loc[0, "multiplier"])
    assert both.worth.loc[0, "matched_dense"] == "dense-1-200000"


def test_one_budget_ladder_says_why_there_is_no_nd_fit():
    from beyondscale.analysis.findings import LadderNDLaw
    from beyondscale.analysis.ladder import ladder_findings, ladder_from_runs
    from beyondscale.report.lab_sections import ladder_sections

    ladder = ladder_from_runs(_planted_runs(budgets=(2e5,)), n_boot=50)
    assert ladder.main.nd is None
    assert ladder.main.nd_note.startswith("no L(N, D) fit: every dense rung trained on the same 200,000 tokens")
    assert not any(isinstance(f, LadderNDLaw) for f in ladder_findings(ladder))
    curve = ladder_sections(ladder)[0]
    assert "No L(N, D) fit: every dense rung trained on the same 200,000 tokens" in curve["text"]
    # two budgets but only four points: the `fit` rule (6 points for L(N, D)) says why
    few = ladder_from_runs(_planted_runs(budgets=(1e5, 2e5)).iloc[[0, 1, 5, 6]], n_boot=50)
    assert few.main.nd is None and "need at least 6" in few.main.nd_note


# ------------------------------------------------------------------------------------------ the sweep


_beyondscale = run_cli


@pytest.fixture()
def tiny(monkeypatch):
    from beyondscale.lab import sweep
    from beyondscale.lab.configs import Shape

    preset = sweep.Preset(dense=[Shape(d_model=d, n_layer=1, n_head=2, context_length=32) for d in (16, 24, 32)],
                          tokens=4096, vocab_size=300, batch_size=8, lr=3e-3, eval_limit=3, memorisation_samples=4,
                          n_experts=4)
    monkeypatch.setitem(sweep.PRESETS, "tiny-nd", preset)
    return preset


def test_two_budget_sweep_stores_every_rung_once_and_resumes(tmp_path, tiny, monkeypatch, capsys):
    from beyondscale.lab.sweep import run_sweep

    raw, db = write_corpus(tmp_path / "raw.txt", 600), tmp_path / "s.db"
    kw = dict(preset="tiny-nd", store=str(db), device="cpu", show_progress=False, tokens=[4096, 8192])
    doc = run_sweep(str(raw), str(tmp_path / "sw"), **kw)
    names = [r["name"] for r in doc["rungs"]]
    assert names == ["dense-0-d16-4.1k", "dense-1-d24-4.1k", "dense-2-d32-4.1k", "dense-0-d16-8.19k",
                     "dense-1-d24-8.19k", "dense-2-d32-8.19k", "moe-4x2-d24", "distilled-d16"]
    tokens = {r["name"]: r["tokens"] for r in doc["rungs"]}
    assert [tokens[n] for n in names] == [4096] * 3 + [8192] * 3 + [4096] * 2  # alternatives at the first budget
    moe = next(r for r in doc["rungs"] if r["kind"] == "moe")
    assert moe["matched_dense"] == "dense-1-d24-4.1k" and doc["token_budgets"] == [4096, 8192]
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT out, tokens FROM lab_training_runs").fetchall()
    assert sorted(o.rsplit("/", 1)[-1] for o, _ in stored) == sorted(names)
    with monkeypatch.context() as no_steps:
        forbid_training(no_steps)  # resumes: nothing retrained (an optimiser step now fails), nothing duplicated
        again = run_sweep(str(raw), str(tmp_path / "sw"), **kw)
    assert [r["val_loss"] for r in again["rungs"]] == [r["val_loss"] for r in doc["rungs"]]
    assert conn.execute("SELECT COUNT(*) FROM lab_training_runs").fetchone() == (8,)
    assert _beyondscale(monkeypatch, "report", "--store", str(db), "--out", str(tmp_path / "r.json")) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    nd = next(s for s in report["extra_sections"] if s["title"].startswith("L(N, D)"))
    assert "3 sizes at 2 token budgets (6 runs)" in nd["text"]
    assert "(an assumption: 100× the rung" in nd["text"]
    served = ["report", "--store", str(db), "--out", str(tmp_path / "s.json"), "--inference-tokens", "2.5e9"]
    assert _beyondscale(monkeypatch, *served) == 0  # served tokens given: used, and no longer an assumption
    nd = next(s for s in json.loads((tmp_path / "s.json").read_text())["extra_sections"]
              if s["title"].startswith("L(N, D)"))
    assert "an assumption" not in nd["text"] and "2.5e+09 served tokens (given)" in nd["text"]
    assert _beyondscale(monkeypatch, "report", "--store", str(db), "--inference-tokens", "-1") == 2


def test_one_budget_sweep_keeps_its_names_and_its_report_says_why_no_nd_fit(tmp_path, tiny, monkeypatch):
    from beyondscale.lab.sweep import run_sweep

    raw, db = write_corpus(tmp_path / "raw.txt", 600), tmp_path / "s.db"
    doc = run_sweep(str(raw), str(tmp_path / "sw"), preset="tiny-nd", store=str(db), device="cpu",
                    show_progress=False)
    assert [r["name"] for r in doc["rungs"]] == ["dense-0-d16", "dense-1-d24", "dense-2-d32", "moe-4x2-d24",
                                                 "distilled-d16"]
    assert _beyondscale(monkeypatch, "report", "--store", str(db), "--out", str(tmp_path / "r.md")) == 0
    md = (tmp_path / "r.md").read_text()
    assert "No L(N, D) fit: every dense rung trained on the same 4,096 tokens" in md


def test_budgets_that_round_to_the_same_steps_are_refused_in_one_line(tmp_path, tiny, monkeypatch, capsys):
    raw = write_corpus(tmp_path / "raw.txt", 300)
    code = _beyondscale(monkeypatch, "sweep", "--data", str(raw), "--out", str(tmp_path / "sw"), "--preset", "tiny-nd",
                        "--tokens", "4096", "--tokens", "4100", "--store", str(tmp_path / "s.db"), "--device", "cpu")
    err = capsys.readouterr().err
    assert code == 2 and "--tokens 4096 4100: two budgets round to the same number of steps" in err
    assert "Traceback" not in err and not (tmp_path / "s.db").exists()
