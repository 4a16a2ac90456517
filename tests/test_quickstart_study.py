"""The `make run` study's pieces: corpus split by file, plan sizing, findings and their wording.

Fast: no model is trained here (the slow pipeline test in test_quickstart_pipeline.py trains a tiny one).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from beyondscale.analysis.findings import Placement
from beyondscale.analysis.wording import word, words
from beyondscale.errors import UserError
from beyondscale.quickstart import conclude as qf
from beyondscale.quickstart.plan import plan_for
from beyondscale.quickstart.source import TEST_SHARE, bpb_task_rows, split_sources


def _user_corpus(path: Path, n: int = 200) -> Path:
    rows = [{"text": f"document {i}: " + " ".join(f"word{(i * j) % 97}" for j in range(40))} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_stdlib_split_is_by_file_disjoint_and_deterministic() -> None:
    a = split_sources(300_000, seed=7)
    b = split_sources(300_000, seed=7)
    assert [d["id"] for d in a.pool] == [d["id"] for d in b.pool]
    pool_ids, test_ids = {d["id"] for d in a.pool}, {d["id"] for d in a.test}
    assert pool_ids and test_ids and not pool_ids & test_ids
    assert all(i.startswith("stdlib:") and i.endswith(".py") for i in pool_ids | test_ids)
    # the budget stops the pool at the first file past it
    sizes = [len(d["text"].encode()) for d in a.pool]
    assert sum(sizes[:-1]) < 300_000 <= sum(sizes) or sum(sizes) < 300_000
    # raw means raw: a pool document is the file's text, byte for byte
    import sysconfig

    rel = a.pool[0]["id"].removeprefix("stdlib:")
    assert (Path(sysconfig.get_paths()["stdlib"]) / rel).read_text(encoding="utf-8") == a.pool[0]["text"]


def test_bigger_pool_keeps_every_file_of_a_smaller_one_and_test_is_fixed() -> None:
    small, big = split_sources(200_000, seed=3), split_sources(600_000, seed=3)
    assert {d["id"] for d in small.pool} <= {d["id"] for d in big.pool}
    assert [d["id"] for d in small.test] == [d["id"] for d in big.test]


def test_user_corpus_split_share(tmp_path: Path) -> None:
    split = split_sources(10**9, seed=1, corpus=str(_user_corpus(tmp_path / "c.jsonl", 400)))
    assert len(split.pool) + len(split.test) == 400
    share = len(split.test) / 400
    assert abs(share - TEST_SHARE) < 4 * math.sqrt(TEST_SHARE * (1 - TEST_SHARE) / 400)


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"), ("not json\n", "line 1 is not JSON"), ('{"txt": "a"}\n', "no string field 'text'"),
    ('{"text": "a"}\n' * 5, "needs at least 40"),
])
def test_user_corpus_mistakes_name_the_flag(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "c.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match="--corpus") as err:
        split_sources(1000, seed=1, corpus=str(path))
    assert message in str(err.value)


def test_bpb_rows_are_whole_opening_lines_within_bounds() -> None:
    test = [{"id": "a", "text": "x = 1\n" * 400}, {"id": "b", "text": "short\n"}, {"id": "c", "text": "y" * 5000}]
    rows = bpb_task_rows(test, 5)
    assert [r["source"] for r in rows] == ["a"]  # "b" too short, "c" has no line end within 1000 characters
    assert 300 <= len(rows[0]["text"]) <= 1000 and test[0]["text"].startswith(rows[0]["text"])
    assert rows[0]["text"].count("\n") == len(rows[0]["text"]) // 6  # whole lines only


def test_an_explicit_budget_starts_from_the_default_plan() -> None:
    """plan_for only checks the budget; the planner (test_quickstart_budget.py) grows the plan from measured costs."""
    base, big = plan_for(), plan_for(30)
    assert big.budget_minutes == 30 and big.tokens == base.tokens and big.shapes == base.shapes
    params = [1024 * s.d_model for s in base.shapes]  # the embedding alone already grows with the width
    assert len(base.shapes) >= 4 and params == sorted(params)
    assert not base.probe_real_models and base.split is None
    with pytest.raises(UserError, match="--budget-minutes 5"):
        plan_for(5)


def _points(E: float, A: float, alpha: float) -> pd.DataFrame:
    """A ladder whose held-out bpb follows a planted law exactly (no noise)."""
    params = np.array([4e4, 1.5e5, 4e5, 9e5])
    rows = [{"model": f"dense-{i}", "kind": "dense", "data": "raw", "matched_dense": None, "params_total": n,
             "params_active": n, "tokens": 1000, "steps": 1, "train_flops": 6 * n * 1000,
             "val_loss": E + A * n ** -alpha, "heldout_bpb": E + A * n ** -alpha, "wall_s": 1.0 + i,
             "tokens_per_s": 1.0} for i, n in enumerate(params)]
    return pd.DataFrame(rows)


def test_law_recovers_a_planted_power_law_and_step_matches_hand_arithmetic() -> None:
    pts = _points(1.5, 40.0, 0.35)
    law, note = qf._law(pts)
    assert note == "" and law.alpha == pytest.approx(0.35, rel=0.05) and law.E == pytest.approx(1.5, rel=0.05)
    step = qf._step(pts)
    n1, n2 = 4e5, 9e5
    b1, b2 = 1.5 + 40 * n1 ** -0.35, 1.5 + 40 * n2 ** -0.35
    assert step.gain_per_doubling == pytest.approx((b1 - b2) / math.log2(n2 / n1))
    text = word(step)
    assert f"{b1:.3f}" in text and f"{b2:.3f}" in text
    assert f"{(b1 - b2) / math.log2(n2 / n1):.3f} bits per byte less per doubling" in text


def test_alternative_on_the_dense_curve_at_4x_compute_is_worth_4x() -> None:
    E, A, alpha = 1.5, 40.0, 0.35
    pts = _points(E, A, alpha)
    # loss vs FLOPs is the same law in C = 6 N T; an MoE reaching the loss of the dense curve at C* with C*/4
    c_star = 6 * 3e5 * 1000
    loss = E + A * (c_star / 6000) ** -alpha
    moe = {"model": "moe", "kind": "moe", "data": "raw", "matched_dense": "dense-1", "params_total": 5e5,
           "params_active": 1e5, "tokens": 1000, "steps": 1, "train_flops": c_star / 4, "val_loss": loss,
           "heldout_bpb": loss, "wall_s": 4.0, "tokens_per_s": 1.0}
    pts = pd.concat([pts, pd.DataFrame([moe])], ignore_index=True)
    law, _ = qf._law(pts)
    worth, note = qf._worth(pts, law)
    assert note == "" and len(worth) == 1
    w = worth[0]
    assert w.multiplier == pytest.approx(4.0, rel=0.05) and w.low <= w.multiplier <= w.high
    assert w.wall_ratio == pytest.approx(4.0 / 2.0)  # its wall time over dense-1's
    assert w.size_equivalent[0] == pytest.approx(3e5, rel=0.05)  # the dense size with its bpb
    text = word(w)
    assert f"{w.multiplier:.3g}×" in text and f"{w.wall_ratio:.2f}×" in text and "active" in text


def test_placement_of_a_model_on_the_law_is_within_its_band() -> None:
    E, A, alpha = 1.5, 40.0, 0.35
    law, _ = qf._law(_points(E, A, alpha))
    mid, lo, hi = law.predict_interval([2e6])
    p = Placement("real", 2e6, E + A * 2e6 ** -alpha, float(mid[0]), float(lo[0]), float(hi[0]), 2e6 / 9e5)
    assert p.predicted == pytest.approx(p.value, rel=0.02)
    assert "2M parameters" in word(p)
    better = Placement("real", 2e6, p.low - 0.5, p.predicted, p.low, p.high, 2.2)
    assert "below (better than)" in word(better)


def test_too_few_rungs_say_why_instead_of_a_law() -> None:
    pts = _points(1.5, 40.0, 0.35).iloc[:3]
    law, note = qf._law(pts)
    assert law is None and "3 have one" in note
    worth, why = qf._worth(pts, None)
    assert worth == [] and "at least 4 dense rungs" in why
    f = qf.Conclusions(pts, law, note, qf._step(pts), worth, why)
    lines = words(f.findings())
    assert any(line.startswith("No law fitted") for line in lines)
    assert any(line.startswith("No compute-equivalent multipliers") for line in lines)


def test_fresh_sets_the_old_study_aside_and_keeps_it(tmp_path: Path) -> None:
    from beyondscale.quickstart.study import fresh_start

    work = tmp_path / "quickstart"
    (work / "ladder").mkdir(parents=True)
    (work / "ladder" / "weights.bin").write_bytes(b"x")
    fresh_start(work)
    assert not work.exists()
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("quickstart.before-")]
    assert (kept / "ladder" / "weights.bin").read_bytes() == b"x"
    fresh_start(work)  # nothing to set aside: no error


def test_lens_openings_fit_the_context_and_keep_whole_lines() -> None:
    from _tiny_models import tiny_tokenizer
    from beyondscale.quickstart.probes import _opening

    tok = tiny_tokenizer()
    text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(50))
    out = _opening(text, tok, 40)
    ids = tok(out, add_special_tokens=False)["input_ids"]
    assert 0 < len(ids) <= 40 and text.startswith(out) and out.endswith("dog")
    assert len(tok(text[: len(out) + 1 + text[len(out) + 1:].index("\n")], add_special_tokens=False)["input_ids"]) > 40
    long_line = "word " * 500
    cut = _opening(long_line, tok, 30)
    assert 0 < len(tok(cut, add_special_tokens=False)["input_ids"]) <= 30 and long_line.startswith(cut)


def test_two_measures_that_disagree_say_which_to_believe() -> None:
    """An alternative worth more than 1x by validation loss but matching a smaller dense model on held-out
    bits per byte: the verdict names the measure whose interval excludes 1x, or says neither does."""
    from beyondscale.analysis.findings import ComputeWorth

    firm = ComputeWorth("moe", "moe", 1e5, 4e5, 1.5, 1.2, 1.9, False, size_equivalent=(8e4, 5e4, 1.3e5))
    assert "believe the compute multiplier (validation loss)" in word(firm)
    loose = ComputeWorth("moe", "moe", 1e5, 4e5, 1.1, 0.8, 1.5, False, size_equivalent=(9e4, 6e4, 1.4e5))
    assert "neither interval excludes 1×" in word(loose)
    agree = ComputeWorth("moe", "moe", 1e5, 4e5, 1.5, 1.2, 1.9, False, size_equivalent=(1.3e5, 1.1e5, 1.6e5))
    assert "opposite ways" not in word(agree)
