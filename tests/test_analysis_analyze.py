"""`analyze` end to end on small constructed store frames, including the thin-data cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from beyondscale.analysis import Analysis, analyze


def _frames(n_models: int = 5, n_items: int = 300, seed: int = 0, shared: bool = True, plateau: int | None = None):
    """Every model better than the one before on wiki (bits per byte 1.5, 1.4, ... x the bytes, 5% item noise);
    from `plateau` on, no better: those models answer every item as model `plateau` does, and model `plateau`
    is right on qa wherever any smaller model is (so none of them beats it on a single item)."""
    rng = np.random.default_rng(seed)
    plateau_items = None
    sizes = 1.35e8 * 2.0 ** np.arange(n_models)
    keys = [f"k{i}" for i in range(n_models)]
    names = [f"M{i}" for i in range(n_models)]
    models = pd.DataFrame({"model_key": keys, "model": names, "params_total": sizes, "params_active": sizes,
                           "flops_per_token": 2 * sizes, "training_tokens": np.nan, "training_flops": np.nan})
    items, scores, eff = [], [], []
    for i, (k, name, size) in enumerate(zip(keys, names, sizes, strict=True)):
        p = 0.9 - 8 * size**-0.15
        acc = (rng.random(n_items) < p).astype(float)
        conf = np.clip(p + rng.normal(0, 0.1, n_items), 0.25, 1)
        docs = np.arange(n_items) + (0 if shared else i * n_items)
        nbytes = rng.integers(100, 400, n_items).astype(float)
        logprob = -nbytes * np.log(2) * (1.5 - 0.1 * i) * np.exp(rng.normal(0, 0.05, n_items))
        if plateau is not None and i == plateau:
            smaller = [f["value"].to_numpy() for f in items if f["metric"].iloc[0] == "acc"]
            plateau_items = (np.maximum.reduce([acc, *smaller]), conf, nbytes, logprob)
        if plateau is not None and i >= plateau:
            acc, conf, nbytes, logprob = plateau_items
        for task, metric, v in (("qa", "acc", acc), ("qa", "confidence", conf), ("wiki", "logprob", logprob),
                                ("wiki", "bytes", nbytes)):
            items.append(pd.DataFrame({"model_key": k, "model": name, "task": task, "doc_id": docs, "metric": metric,
                                       "value": v}))
        scores.append((k, name, "qa", "acc", acc.mean(), acc.std() / np.sqrt(n_items), n_items))
        scores.append((k, name, "wiki", "bits_per_byte", -logprob.sum() / np.log(2) / nbytes.sum(), 0.01, n_items))
        for task in ("qa", "wiki"):
            eff.append({"model_key": k, "model": name, "task": task, "latency_ms_per_item": 5.0 * 2**i,
                        "peak_memory_bytes": 2 * size + 1e8, "joules_per_token": 0.01 * 2**i,
                        "energy_source": "estimate:tdp", "usd_per_1m_tokens": 0.001 * 2**i, "tokens_per_s": 1e4 / 2**i})
    scores = pd.DataFrame(scores, columns=["model_key", "model", "task", "metric", "value", "stderr", "n_items"])
    return models, scores, pd.DataFrame(eff), pd.concat(items, ignore_index=True)


def test_analyze_end_to_end():
    frames = _frames()
    an = analyze(*frames, n_boot=200, seed=0)
    assert isinstance(an, Analysis)
    json.dumps(an.to_json())  # JSON-ready
    lb = an.leaderboard
    assert list(lb.columns[:5]) == ["model", "model_key", "params_total", "params_active", "flops_per_token"]
    assert {"qa/acc", "wiki/bits_per_byte", "joules_per_token", "energy_source", "mean_score"} <= set(lb.columns)
    # curves on every axis we have data for, fits on size axes with 5 points
    assert {"params_total", "flops_per_token", "joules_per_token", "usd_per_1m_tokens"} <= set(an.curves["axis"])
    ok = an.fits[an.fits["status"] == "ok"]
    assert {("qa", "acc", "score"), ("wiki", "bits_per_byte", "loss")} <= set(zip(ok["task"], ok["metric"], ok["form"],
                                                                                     strict=True))
    assert not an.fit_bands.empty and set(an.marginal["source"]) == {"adjacent", "fit"}
    # paired: every pair on both tasks, McNemar for acc matches scipy on discordant counts
    assert len(an.paired) == 2 * 10
    _, _, _, items = frames
    qa = items[(items["task"] == "qa") & (items["metric"] == "acc")].pivot(index="doc_id", columns="model",
                                                                           values="value")
    row = an.paired[(an.paired["metric"] == "acc") & (an.paired["model_a"] == "M0") & (an.paired["model_b"] == "M3")]
    b = int(((qa["M0"] == 1) & (qa["M3"] == 0)).sum())
    c = int(((qa["M0"] == 0) & (qa["M3"] == 1)).sum())
    assert np.isclose(row["p_value"].iloc[0], binomtest(b, b + c, 0.5).pvalue)
    assert np.isclose(row["effect"].iloc[0], qa["M3"].mean() - qa["M0"].mean())
    assert row["test"].iloc[0] == "mcnemar"
    bpb = an.paired[an.paired["metric"] == "bits_per_byte"]
    assert bpb["test"].isin(["sign_flip_exact", "sign_flip_mc"]).all() and (bpb["effect"] < 0).all()
    flagged = an.paired[an.paired["flag"] != ""]
    assert (~flagged["significant"] | (flagged["effect"] <= 0)).all()
    # Pareto, calibration, recommendation, verdict
    assert {"joules_per_token", "usd_per_1m_tokens", "ms_per_item", "peak_memory_bytes"} <= set(
        an.pareto["cost_axis"])
    assert set(an.calibration["model"]) == {f"M{i}" for i in range(5)}
    # planted: each model beats the one before on wiki (bits per byte 7% lower, 300 items), so M4 alone is
    # beaten by no other model
    assert (an.recommendation["model"], an.recommendation["rule"]) == ("M4", "unbeaten")
    # estimated energy (estimate:tdp) restates the time ratio: reported once, as time (issue 13)
    assert an.verdict and any("time per item" in v and "bits_per_byte" in v for v in an.verdict)
    assert not any("energy per token" in v for v in an.verdict)
    assert any("same measurement" in v for v in an.verdict)


@pytest.mark.parametrize("plateau", [1, 2, 3])
def test_the_smallest_model_no_other_beats_is_recommended(plateau):
    """Planted: the models below `plateau` are each significantly worse on wiki than the next one up, and the
    models from `plateau` on are identical item by item: model `plateau` is the one right answer."""
    an = analyze(*_frames(plateau=plateau), n_boot=200, seed=0)
    assert (an.recommendation["model"], an.recommendation["rule"]) == (f"M{plateau}", "unbeaten")
    found = an.paired[an.paired["significant"].astype(bool)]
    larger_better = np.where(found["metric"] == "acc", found["effect"] > 0, found["effect"] < 0)
    assert larger_better.all()  # the planted order, as the paired tests found it: larger models win...
    assert set(found["model_a"]) == {f"M{i}" for i in range(plateau)}  # ...over the ones below the plateau only


def test_analyze_constraints():
    an = analyze(*_frames(), n_boot=50, constraints={"max_latency_ms": 12})
    assert an.recommendation["model"] == "M0"
    an = analyze(*_frames(), n_boot=50, constraints={"max_latency_ms": 1})
    assert an.recommendation["model"] is None and "latency" in an.recommendation["reason"]
    # every model is ruled out, each in one verdict sentence naming the figure and the flag
    ruled = [v for v in an.verdict if "ruled out by the constraints" in v]
    assert len(ruled) == 5 and all("ms/item > 1 (max_latency_ms)" in v for v in ruled)


def test_one_model_gives_notes_not_errors():
    models, scores, eff, items = _frames()
    one = [df[df["model_key"] == "k0"] for df in (models, scores, eff, items)]
    an = analyze(*one, n_boot=50)
    assert any("only 1 model" in n for n in an.notes)
    assert an.paired.empty and an.fits.empty and len(an.leaderboard) == 1
    json.dumps(an.to_json())


def test_two_models_fits_skipped_with_reason():
    models, scores, eff, items = _frames()
    two = [df[df["model_key"].isin(["k0", "k1"])] for df in (models, scores, eff, items)]
    an = analyze(*two, n_boot=50)
    assert (an.fits["status"] == "skipped").all()
    assert an.fits["reason"].str.contains("2 models: a 3-parameter curve needs at least 4").all()
    assert len(an.paired) == 2


def test_no_shared_items_gives_notes():
    an = analyze(*_frames(n_models=3, shared=False), n_boot=50)
    assert an.paired.empty
    assert any("share no items" in n for n in an.notes)


def test_empty_frames():
    an = analyze(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    assert an.notes and an.recommendation["model"] is None


def test_two_variable_fit_and_compute_optimal_when_tokens_vary():
    rng = np.random.default_rng(0)
    n = np.repeat(np.logspace(7.5, 9, 4), 3)
    d = n * np.tile([5, 20, 80], 4)
    keys = [f"k{i}" for i in range(len(n))]
    models = pd.DataFrame({"model_key": keys, "model": keys, "params_total": n, "training_tokens": d})
    loss = (1.7 + 400 * n**-0.34 + 410 * d**-0.28) * np.exp(rng.normal(0, 0.003, len(n)))
    scores = pd.DataFrame({"model_key": keys, "model": keys, "task": "wiki", "metric": "bits_per_byte",
                           "value": loss, "stderr": 0.01, "n_items": 100})
    an = analyze(models, scores, pd.DataFrame(), pd.DataFrame(), n_boot=100)
    nd = an.fits[an.fits["form"] == "loss_nd"].set_index("param")
    assert nd.loc["beta", "ci_low"] <= 0.28 <= nd.loc["beta", "ci_high"]
    co = an.compute_optimal
    assert len(co) > 0 and np.allclose(6 * co["N_opt"] * co["D_opt"], co["C"])
    assert any("no per-item results" in n for n in an.notes)


def test_one_law_per_family_and_gains_never_cross_families():
    """Five models of one family and a sixth of another tokenizer, a little bigger than the largest: it is a
    labelled point beside the law, never inside the fit, and no gain per doubling is taken across to it."""
    models, scores, eff, items = _frames(n_models=6)
    models["family"] = ["ladder"] * 5 + ["other"]
    models["tokenizer_key"] = ["tok"] * 5 + ["tok2"]
    an = analyze(models, scores, eff, items, n_boot=50)
    pts = an.curves[(an.curves["axis"] == "params_total") & (an.curves["task"] == "qa")]
    assert pts.set_index("model")["in_fit"].to_dict() == {**{f"M{i}": True for i in range(5)}, "M5": False}
    fit = an.fits[(an.fits["axis"] == "params_total") & (an.fits["task"] == "qa")]
    assert (fit["n_points"] == 5).all() and set(fit["param"]) == {"asymptote", "A", "alpha"}
    adj = an.marginal[(an.marginal["source"] == "adjacent") & (an.marginal["axis"] == "params_total")]
    assert not ((adj["from_model"] == "M4") & (adj["to_model"] == "M5")).any()
    assert len(an.backtests[an.backtests["axis"] == "params_total"]) == 2  # qa and wiki, 5 sizes each
