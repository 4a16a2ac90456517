"""The verdict a skeptical reader checks: same-size pairs, mixed results, negative gains, p floors, Holm,
knees from curves only, one measurement stated once, and framing across families.

Frames are built here with the contract's columns (task_key, tasks frame, model facts); expected values
come from scipy or a by-hand computation, never from the analysis itself.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from beyondscale.analysis import analyze
from beyondscale.analysis.paired import MC_PERMUTATIONS, holm
from beyondscale.analysis.wording import format_p, words

LN2 = np.log(2.0)


def _bpb_items(rng: np.random.Generator, bpb: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    nbytes = rng.integers(100, 400, n).astype(float)
    logprob = -nbytes * LN2 * bpb * np.exp(rng.normal(0, 0.05, n))
    return logprob, nbytes


def _acc_pair(b: int, c: int, both: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 answers of (a, b) with b items only a got right, c only b got right, `both` both right."""
    a = np.zeros(n)
    bb = np.zeros(n)
    a[:b] = 1
    bb[b:b + c] = 1
    a[b + c:b + c + both] = 1
    bb[b + c:b + c + both] = 1
    return a, bb


def build(models: list[dict], results: dict[tuple[str, str], tuple], eff: dict[str, dict] | None = None,
          task_versions: dict[str, tuple[str, float]] | None = None):
    """Frames with the contract's columns. results[(model_key, task_key)] = ("acc", arr) | ("bpb", (lp, nb))."""
    mdf = pd.DataFrame([{"family": "f", "vocab_size": 49152, "dtype": "float32", "quantization": None,
                         "tokenizer_key": "tok", **m} for m in models])
    mdf["params_active"] = mdf["params_total"]
    names = dict(zip(mdf["model_key"], mdf["model"], strict=True))
    versions = task_versions or {}
    task_of = {tk: versions.get(tk, (tk, 0.0))[0] for _, tk in results}
    items, scores = [], []
    for (k, tk), (kind, data) in results.items():
        base = {"model_key": k, "model": names[k], "task": task_of[tk], "task_key": tk}
        if kind == "acc":
            docs = np.arange(len(data))
            items.append(pd.DataFrame({**base, "doc_id": docs.astype(str), "metric": "acc", "value": data}))
            scores.append({**base, "metric": "acc", "value": data.mean(), "stderr": data.std() / np.sqrt(len(data)),
                           "n_items": len(data)})
        else:
            lp, nb = data
            docs = np.arange(len(lp)).astype(str)
            items.append(pd.DataFrame({**base, "doc_id": docs, "metric": "logprob", "value": lp}))
            items.append(pd.DataFrame({**base, "doc_id": docs, "metric": "bytes", "value": nb}))
            scores.append({**base, "metric": "bits_per_byte", "value": -lp.sum() / LN2 / nb.sum(), "stderr": 0.01,
                           "n_items": len(lp)})
    effs = []
    for k, tk in results:
        e = (eff or {}).get(k, {"ms_per_item": 10.0, "joules_per_token": 0.01, "energy_source": "rapl"})
        effs.append({"model_key": k, "model": names[k], "task": task_of[tk], "task_key": tk, **e})
    tasks = pd.DataFrame([{"task_key": tk, "task": task_of[tk], "spec_hash": tk, "created": versions.get(tk, (tk, 0.0))[1],
                           "n_items": None} for tk in dict.fromkeys(tk for _, tk in results)])
    return mdf, pd.DataFrame(scores), pd.DataFrame(effs), pd.concat(items, ignore_index=True), tasks


def run(frames, **kw):
    m, s, e, i, t = frames
    return analyze(m, s, e, i, task_versions=t, n_boot=kw.pop("n_boot", 200), **kw)


# ------------------------------------------------------------------------------------------- same size


def _same_size(intact_name: str, damaged_name: str, intact_key: str = "k1", damaged_key: str = "k2"):
    rng = np.random.default_rng(0)
    models = [{"model_key": intact_key, "model": intact_name, "params_total": 1.35e8},
              {"model_key": damaged_key, "model": damaged_name, "params_total": 1.35e8}]
    results = {(intact_key, "wiki"): ("bpb", _bpb_items(rng, 1.11, 120)),
               (damaged_key, "wiki"): ("bpb", _bpb_items(rng, 3.24, 120))}
    return build(models, results)


@pytest.mark.parametrize(("intact", "damaged", "ki", "kd"), [
    ("A-intact", "Z-damaged", "k1", "k2"), ("Z-intact", "A-damaged", "k1", "k2"),
    ("A-intact", "Z-damaged", "k2", "k1"), ("Z-intact", "A-damaged", "k2", "k1")])
def test_same_size_intact_model_is_recommended_whatever_the_names(intact, damaged, ki, kd):
    an = run(_same_size(intact, damaged, ki, kd))
    assert an.recommendation["model"] == intact
    text = " ".join(an.verdict)
    assert "smaller" not in text and "bigger" not in text and "x the parameters" not in text
    row = an.paired.iloc[0]
    assert row["flag"] == ""  # neither is bigger
    assert row["better"] == intact and bool(row["significant"])
    assert f"{intact} is significantly better than {damaged}" in text
    assert "same size" in text


# ------------------------------------------------------------------------------------------- negative gain


def test_negative_gain_says_the_bigger_model_is_worse_not_that_returns_flatten():
    rng = np.random.default_rng(1)
    models = [{"model_key": "s", "model": "Small", "params_total": 1.35e8},
              {"model_key": "b", "model": "Big", "params_total": 2.7e8}]
    results = {("s", "wiki"): ("bpb", _bpb_items(rng, 1.00, 150)), ("b", "wiki"): ("bpb", _bpb_items(rng, 1.076, 150))}
    an = run(build(models, results))
    text = " ".join(an.verdict)
    assert "flatten" not in text and "gains less" not in text
    assert "Big is worse than Small on wiki" in text
    assert list(an.paired["flag"]) == ["bigger and significantly worse"] and list(an.paired["better"]) == ["Small"]
    assert an.knees.empty  # two points are no curve
    assert an.recommendation["model"] == "Small"


def test_two_models_never_give_a_knee_three_can():
    sizes = [1e8, 2e8, 4e8]
    models = [{"model_key": f"k{i}", "model": f"M{i}", "params_total": s} for i, s in enumerate(sizes)]
    acc = [np.r_[np.ones(k), np.zeros(400 - k)] for k in (200, 280, 282)]
    res3 = {(f"k{i}", "qa"): ("acc", a) for i, a in enumerate(acc)}
    two = {k: v for k, v in res3.items() if k[0] != "k2"}
    an2 = run(build(models[:2], two))
    assert an2.knees.empty and "flatten" not in " ".join(an2.verdict)
    an3 = run(build(models, res3))
    knee = an3.knees[(an3.knees["axis"] == "params_total") & (an3.knees["method"] == "threshold")]
    assert list(knee["model"]) == ["M1"]  # 0.20 gain then ~0.005 < 1 point per doubling
    assert any("returns flatten after M1" in v for v in an3.verdict)


# ------------------------------------------------------------------------------------------- p floor and Holm


def test_format_p_at_the_bootstrap_floor():
    assert format_p(1 / 1001, floor=1 / 1001) == "p<0.001"
    assert format_p(1 / 201, floor=1 / 201) == "p<0.005"
    assert format_p(0.0312, floor=0.0) == "p=0.031"
    assert format_p(2e-7, floor=0.0) == "p<0.001"


def test_monte_carlo_p_at_floor_is_printed_as_an_inequality():
    frames = _same_size("Intact", "Damaged")
    an = run(frames, n_boot=1000)
    assert an.paired["test"].iloc[0] == "sign_flip_mc"
    assert np.isclose(an.paired["p_value"].iloc[0], 1 / (MC_PERMUTATIONS + 1))
    text = " ".join(an.verdict)
    assert "p<0.001" in text and "p=0.001" not in text


def test_exact_p_never_below_what_n_items_allow():
    assert format_p(2 / 2**8, floor=2 / 2**8, exact=True, n_items=8) == "p=0.0078 (the smallest 8 items allow)"
    assert format_p(2 / 2**7, floor=2 / 2**7, exact=True, n_items=8) == "p=0.016 (the smallest 7 items that differ allow)"
    assert format_p(float("nan"), exact=True, n_items=5) == "too few items to test (5)"
    assert format_p(0.0234, floor=2 / 2**8, exact=True, n_items=8) == "p=0.023"


@pytest.mark.parametrize(("n_docs", "expect"), [(8, "p=0.0078 (the smallest 8 items allow)"),
                                                 (4, "too few items to test (4)")])
def test_verdict_p_on_few_documents_all_favouring_one_model(n_docs, expect):
    rng = np.random.default_rng(0)
    models = [{"model_key": "k1", "model": "Good", "params_total": 1.35e8},
              {"model_key": "k2", "model": "Bad", "params_total": 1.35e8}]
    frames = build(models, {("k1", "wiki"): ("bpb", _bpb_items(rng, 1.11, n_docs)),
                            ("k2", "wiki"): ("bpb", _bpb_items(rng, 3.24, n_docs))})
    an = run(frames, n_boot=1000)
    text = " ".join(an.verdict)
    assert expect in text and "p<0.001" not in text
    assert n_docs >= 6 or "no significant difference" not in text  # untested is not "no difference"
    assert n_docs < 6 or np.isclose(an.paired["p_value"].iloc[0], 2 / 2**n_docs)  # 2 of 2^8 swap patterns


def test_holm_by_hand():
    assert np.allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    assert np.allclose(holm(np.array([0.5])), [0.5])
    assert np.allclose(holm(np.array([0.001, 0.9])), [0.002, 0.9])


def test_holm_over_the_tasks_of_one_comparison():
    # three tasks, each with 3 vs 12 discordant items: raw McNemar p = 0.035 on each, Holm-adjusted 0.105
    models = [{"model_key": "s", "model": "Small", "params_total": 1e8},
              {"model_key": "b", "model": "Big", "params_total": 2e8}]
    results = {}
    for t in ("t1", "t2", "t3"):
        a, b = _acc_pair(3, 12, 40, 100)
        results[("s", t)] = ("acc", a)
        results[("b", t)] = ("acc", b)
    an = run(build(models, results))
    raw = binomtest(3, 15, 0.5).pvalue
    assert np.allclose(an.paired["p_value"], raw)
    assert np.allclose(an.paired["p_adjusted"], min(1.0, 3 * raw))
    assert not an.paired["significant"].any()
    assert an.recommendation["model"] == "Small"
    text = " ".join(an.verdict)
    assert f"p={raw:.2g}" in text and "Holm" in text and f"{3 * raw:.2g}" in text


# ------------------------------------------------------------------------------------------- mixed


def _mixed():
    rng = np.random.default_rng(3)
    models = [{"model_key": "s", "model": "Small", "params_total": 1.35e8},
              {"model_key": "b", "model": "Big", "params_total": 2.7e8}]
    a, b = _acc_pair(2, 30, 40, 120)
    tie_a, tie_b = _acc_pair(10, 10, 40, 120)
    results = {("s", "pattern"): ("acc", a), ("b", "pattern"): ("acc", b),
               ("s", "next"): ("acc", tie_a), ("b", "next"): ("acc", tie_b),
               ("s", "wiki"): ("bpb", _bpb_items(rng, 1.11, 120)), ("b", "wiki"): ("bpb", _bpb_items(rng, 1.19, 120))}
    return build(models, results)


def test_mixed_result_says_no_dominant_model_and_recommends_by_no_hidden_rule():
    an = run(_mixed())
    text = " ".join(an.verdict)
    assert "No model dominates" in text
    assert "Big is significantly better on pattern" in text and "Small is significantly better on wiki" in text
    assert "no significant difference on next" in text
    assert an.recommendation["model"] is None
    assert "primary" in an.recommendation["reason"]


def test_mixed_result_with_a_primary_task_names_where_the_cheaper_model_wins():
    an = run(_mixed(), primary="pattern")
    assert an.recommendation["model"] == "Big"
    rec = next(v for v in an.verdict if v.startswith("Recommended"))
    assert "primary task pattern" in rec and "Small, which is smaller, is significantly better on wiki" in rec
    an = run(_mixed(), primary="wiki")
    assert an.recommendation["model"] == "Small"


def test_primary_must_name_a_scored_task():
    from beyondscale.errors import UserError

    with pytest.raises(UserError, match="primary"):
        run(_mixed(), primary="nope")


# ------------------------------------------------------------------------------------------- measurement, framing


def _cost_pair(source: str, families=("f", "f")):
    rng = np.random.default_rng(4)
    models = [{"model_key": "s", "model": "Small", "params_total": 1e8, "family": families[0]},
              {"model_key": "b", "model": "Big", "params_total": 2e8, "family": families[1]}]
    if families[0] != families[1]:
        models[1].update(vocab_size=262144, dtype="Q8_0", quantization="Q8_0", tokenizer_key="tok2",
                         architecture="Gemma3ForCausalLM")
        models[0].update(architecture="LlamaForCausalLM")
    results = {("s", "wiki"): ("bpb", _bpb_items(rng, 1.2, 100)), ("b", "wiki"): ("bpb", _bpb_items(rng, 1.0, 100))}
    eff = {"s": {"ms_per_item": 10.0, "joules_per_token": 0.010, "energy_source": source},
           "b": {"ms_per_item": 17.0, "joules_per_token": 0.017, "energy_source": source}}
    return build(models, results, eff)


def test_estimated_energy_is_the_time_measurement_stated_once():
    an = run(_cost_pair("estimate:tdp"))
    text = " ".join(an.verdict)
    assert "1.7x the time per item" in text
    assert "1.7x the estimated energy" not in text and "same measurement" in text
    measured = " ".join(run(_cost_pair("rapl")).verdict)
    assert "1.7x the energy per token" in measured and "1.7x the time per item" in measured


def test_different_families_are_not_a_scaling_result():
    an = run(_cost_pair("rapl", families=("smollm2", "gemma3")))
    text = " ".join(an.verdict)
    assert "not a scaling result" in text and "2.0x the parameters of" not in text
    assert "family" in text and "vocabulary" in text and "architecture LlamaForCausalLM vs Gemma3ForCausalLM" in text
    lb = an.leaderboard
    assert {"family", "vocab_size", "dtype", "quantization"} <= set(lb.columns)
    assert list(lb.columns[:2]) == ["model", "model_key"]


def test_verdict_is_the_wording_of_the_findings():
    an = run(_mixed(), primary="pattern")
    assert an.findings and an.verdict == words(an.findings)
    assert {type(f).__name__ for f in an.findings} >= {"Recommendation", "NoDominantModel", "SizeStep"}


def test_no_result_depends_on_names():
    a = run(_mixed())
    m, s, e, i, t = _mixed()
    ren = {"Small": "Zeta", "Big": "Alpha"}
    b = analyze(*(df.assign(model=df["model"].map(ren)) for df in (m, s, e, i)), task_versions=t, n_boot=200)
    back = [re.sub("Zeta|Alpha", lambda x: {"Zeta": "Small", "Alpha": "Big"}[x.group()], v) for v in b.verdict]
    assert back == a.verdict
    cols = ["task", "metric", "effect", "p_value", "p_adjusted", "significant"]
    pd.testing.assert_frame_equal(a.paired[cols], b.paired[cols])


def test_a_model_never_compared_is_not_recommended_as_unbeaten():
    rng = np.random.default_rng(5)
    models = [{"model_key": "t", "model": "Tiny", "params_total": 5e7},
              {"model_key": "s", "model": "Small", "params_total": 1e8},
              {"model_key": "b", "model": "Big", "params_total": 2e8}]
    results = {("s", "wiki"): ("bpb", _bpb_items(rng, 1.3, 100)), ("b", "wiki"): ("bpb", _bpb_items(rng, 1.0, 100)),
               ("t", "wiki"): ("bpb", _bpb_items(rng, 2.0, 100))}
    m, s, e, i, t = build(models, results)
    i = i[i["model_key"] != "t"]  # Tiny has a score but no per-item results: never in a paired test
    an = analyze(m, s, e, i, task_versions=t, n_boot=200)
    assert an.recommendation["model"] == "Big"


def test_primary_without_items_says_the_difference_is_untested():
    m, s, e, i, t = _mixed()
    an = analyze(m, s, e, i.iloc[0:0], task_versions=t, n_boot=50, primary="pattern")
    assert an.recommendation["model"] == "Big"  # 0.583 vs 0.350 accuracy, by hand from _acc_pair(2, 30, 40, 120)
    assert "not tested" in an.recommendation["reason"]


def test_same_size_models_not_told_apart_are_both_named():
    models = [{"model_key": "q4", "model": "Model-Q4", "params_total": 1.35e8},
              {"model_key": "f16", "model": "Model-F16", "params_total": 1.35e8}]
    a, b = _acc_pair(10, 11, 50, 100)
    an = run(build(models, {("q4", "qa"): ("acc", a), ("f16", "qa"): ("acc", b)}))
    rec = an.recommendation
    other = ({"Model-Q4", "Model-F16"} - {rec["model"]}).pop()
    assert f"{other} is the same size and not significantly worse: either will do" in rec["reason"]


def test_no_dominant_model_names_each_task_once_per_winner():
    """Many models: a winner's task is named once, with the models it beats and the weakest p among them."""
    from beyondscale.analysis.findings import NoDominantModel, PValue, Win
    from beyondscale.analysis.wording import word

    wins = tuple(Win("bpb", "bits_per_byte", "Big", loser, -0.1, PValue(p, 1 / 1001, min(1.0, 3 * p), 3),
                     "paired_bootstrap", 50) for loser, p in (("A", 0.0001), ("B", 0.004), ("C", 0.0001)))
    wins += (Win("mc", "acc", "A", "Big", 0.2, PValue(0.01, 0.0, 0.02, 3), "mcnemar", 50),)
    text = word(NoDominantModel(wins, ()))
    assert text.count("on bpb") == 1 and "than A, B and C" in text
    assert "p=0.004, Holm p=0.012" in text  # the weakest of Big's three wins
    assert "A is significantly better on mc than Big" in text


def test_no_dominant_model_states_the_trade_off_among_undominated_models_only():
    """A model beaten by another and better than it nowhere is set aside; the trade-off is among the rest."""
    from beyondscale.analysis.derive import trade_off_front
    from beyondscale.analysis.findings import PValue, Win

    def win(better, worse, task):
        return Win(task, "acc", better, worse, 0.1, PValue(0.01, 0.0, 0.02, 2), "mcnemar", 50)

    wins = (win("Big", "Small", "pattern"), win("Small", "Big", "wiki"), win("Mid", "Tiny", "wiki"),
            win("Big", "Mid", "wiki"), win("Small", "Mid", "pattern"), win("Big", "Tiny", "pattern"))
    front, dominated = trade_off_front(wins)
    assert {(w.better, w.worse) for w in front} == {("Big", "Small"), ("Small", "Big")}
    assert dominated == ("Mid", "Tiny")
