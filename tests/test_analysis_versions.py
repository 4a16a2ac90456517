"""Task versions: a task's data is edited and one model re-evaluated. The paired test must use only the
items of the newest version both models have, and the verdict/report must say a model lacks the current one."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from beyondscale.report import render_markdown
from test_analysis_verdict import _acc_pair, build, run


def _edited():
    models = [{"model_key": "s", "model": "Small", "params_total": 1e8},
              {"model_key": "b", "model": "Big", "params_total": 2e8}]
    a_old, b_old = _acc_pair(2, 20, 30, 80)      # version 1: 80 items, Big clearly better
    a_new, _ = _acc_pair(20, 2, 30, 100)         # version 2 (edited data, 100 items): only Small re-evaluated
    results = {("s", "qa@v1"): ("acc", a_old), ("b", "qa@v1"): ("acc", b_old), ("s", "qa@v2"): ("acc", a_new)}
    versions = {"qa@v1": ("qa", 1000.0), "qa@v2": ("qa", 2000.0)}
    return build(models, results, task_versions=versions), (a_old, b_old)


def test_paired_test_uses_only_the_version_both_models_have():
    frames, (a_old, b_old) = _edited()
    an = run(frames)
    assert len(an.paired) == 1
    row = an.paired.iloc[0]
    assert row["task_key"] == "qa@v1" and row["n_items"] == 80
    assert np.isclose(row["p_value"], binomtest(2, 22, 0.5).pvalue)
    assert np.isclose(row["effect"], b_old.mean() - a_old.mean())
    text = " ".join(an.verdict)
    assert "Big was not scored on the current version of qa" in text
    assert "older version both share (80 items)" in text


def test_leaderboard_flags_means_over_different_versions():
    frames, _ = _edited()
    an = run(frames)
    lb = an.leaderboard.set_index("model")
    # each model's own newest version: Small on v2, Big on v1 -> the column mixes item sets
    assert np.isclose(lb.at["Small", "qa/acc"], _acc_pair(20, 2, 30, 100)[0].mean())
    v = an.versions.set_index("model")
    assert bool(v.at["Small", "current"]) and not bool(v.at["Big", "current"])
    md = render_markdown(an, models=frames[0], scores=frames[1])
    assert "older version" in md
    assert "Big was not scored on the current version of qa" in md


def test_one_version_per_task_has_no_version_findings():
    models = [{"model_key": "s", "model": "Small", "params_total": 1e8},
              {"model_key": "b", "model": "Big", "params_total": 2e8}]
    a, b = _acc_pair(2, 20, 30, 80)
    an = run(build(models, {("s", "qa"): ("acc", a), ("b", "qa"): ("acc", b)}))
    assert not any("version" in v for v in an.verdict)
    assert an.versions["current"].all()
