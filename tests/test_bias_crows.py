"""CrowS-Pairs scoring against a naive per-sentence log-likelihood, and its file checks."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from _tiny_models import tiny_llama, tiny_tokenizer
from beyondscale.bias import crows
from beyondscale.errors import UserError

# Crafted for this test (not CrowS-Pairs text): neutral sentences in the CSV layout the authors use.
ROWS = [
    ("The red cat sat on the mat.", "The blue cat sat on the mat.", "stereo", "colour"),
    ("A big dog ran to the house.", "A small dog ran to the house.", "stereo", "size"),
    ("The quick fox jumped over it.", "The slow fox jumped over it.", "antistereo", "speed"),
    ("She ran to the river at night.", "He ran to the river at night.", "stereo", "colour"),
    ("They sat under the big tree.", "We sat under the big tree.", "antistereo", "size"),
]


def write_csv(path, rows=ROWS, header=("", "sent_more", "sent_less", "stereo_antistereo", "bias_type")):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, row in enumerate(rows):
            w.writerow((i, *row))
    return path


def naive_ll(model, tok, sentence):
    """log p(sentence | BOS): lm-eval's empty-context request, computed by hand."""
    ids = [tok.bos_token_id, *tok.encode(sentence, add_special_tokens=False)]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return float(sum(logp[i - 1, ids[i]] for i in range(1, len(ids))))


def test_scores_equal_hand_computation(tmp_path):
    model, tok = tiny_llama(), tiny_tokenizer()
    pairs = crows.read_pairs(write_csv(tmp_path / "c.csv"))
    doc, lls = crows.score_crows(model, tok, pairs, invalid={"1"})
    more = np.array([naive_ll(model, tok, r[0]) for r in ROWS])
    less = np.array([naive_ll(model, tok, r[1]) for r in ROWS])
    np.testing.assert_allclose([ll[0] for ll in lls], more, atol=1e-4)
    np.testing.assert_allclose([ll[1] for ll in lls], less, atol=1e-4)
    assert doc["n"] == 5
    assert doc["pct_stereotype"] == pytest.approx(float(np.mean(more > less)))
    assert doc["likelihood_diff"] == pytest.approx(float(np.mean(np.abs(more - less))), abs=1e-4)
    colour = [0, 3]
    assert doc["per_bias_type"]["colour"]["n"] == 2
    assert doc["per_bias_type"]["colour"]["pct_stereotype"] == pytest.approx(float(np.mean(more[colour] > less[colour])))
    assert doc["per_direction"]["antistereo"]["n"] == 2
    assert doc["flagged_invalid"] == ["1"]
    keep = [0, 2, 3, 4]
    assert doc["without_flagged"]["likelihood_diff"] == pytest.approx(float(np.mean(np.abs(more - less)[keep])),
                                                                      abs=1e-4)
    lo, hi = doc["likelihood_diff_ci95"]
    assert lo <= doc["likelihood_diff"] <= hi


def test_bootstrap_interval_matches_scipy():
    from scipy import stats

    values = np.random.default_rng(0).normal(size=200)
    ours = crows.bootstrap_ci(values)

    def ref(level: float) -> tuple[float, float]:
        ci = stats.bootstrap((values,), np.mean, n_resamples=40_000, method="percentile", random_state=1,
                             confidence_level=level).confidence_interval
        return ci.low, ci.high

    # Tolerance: twice the Monte Carlo error of a 2.5% quantile of our 2,000 resamples (about 0.005 here),
    # half the 0.021 by which a 90% interval's ends differ from a 95% one's: the wrong level fails.
    tol = 0.01
    low, high = ref(0.95)
    assert ours[0] == pytest.approx(low, abs=tol) and ours[1] == pytest.approx(high, abs=tol)
    wrong = crows.bootstrap_ci(values, level=0.90)
    assert abs(wrong[0] - low) > tol and abs(wrong[1] - high) > tol


@pytest.mark.parametrize(("rows", "header", "message"), [
    (ROWS[:2] + [("", "x.", "stereo", "size")], None, r"row 3: field 'sent_more' is empty"),
    (ROWS[:1] + [("a.", "b.", "sideways", "size")], None, r"row 2: stereo_antistereo is 'sideways'"),
    (ROWS, ("", "sent_more", "sent_less", "bias_type", "x"), r"header lacks column\(s\) stereo_antistereo"),
])
def test_malformed_csv_names_the_row(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "bad.csv", rows, header or ("", "sent_more", "sent_less", "stereo_antistereo",
                                                           "bias_type"))
    with pytest.raises(UserError, match=message):
        crows.read_pairs(path)


def test_malformed_jsonl_names_the_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = '{"sent_more": "a.", "sent_less": "b.", "stereo_antistereo": "stereo", "bias_type": "x"}'
    path.write_text(good + "\n" + good.replace('"a."', '"c."') + "\n{not json\n")
    with pytest.raises(UserError, match=r"bad.jsonl: row 3: not valid JSON"):
        crows.read_pairs(path)


def test_short_row_in_csv(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(",sent_more,sent_less,stereo_antistereo,bias_type\n0,a.,b.,stereo,x\n1,a.,b.\n")
    with pytest.raises(UserError, match=r"row 2: wrong number of fields"):
        crows.read_pairs(path)


def _lm_eval_crows_yaml():
    pytest.importorskip("lm_eval")
    from pathlib import Path

    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks" / "crows_pairs"


@pytest.mark.parametrize(("variant", "expected_types"), [
    ("crows_pairs_english.yaml", {"colour", "size", "speed"}),
    ("crows_pairs_english_gender.yaml", set()),
])
def test_through_lm_eval_task_file(tmp_path, variant, expected_types):
    """lm-eval's own task files (include followed, !function kept as data), pointed at a local CSV."""
    import yaml

    folder = _lm_eval_crows_yaml()
    data = write_csv(tmp_path / "c.csv")
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"include": str(folder / variant), "task": "local", "dataset_path": "csv",
                                    "dataset_kwargs": {"data_files": {"test": str(data)}}}))
    if not expected_types:
        with pytest.raises(UserError, match="no documents to evaluate"):  # the gender filter keeps none of the rows
            crows.read_pairs(task)
        return
    pairs = crows.read_pairs(task)
    assert {p.bias_type for p in pairs} == expected_types and len(pairs) == len(ROWS)


def test_gender_filter_keeps_prefix(tmp_path):
    import yaml

    rows = [(*r[:3], "gender") if i % 2 else r for i, r in enumerate(ROWS)]
    data = write_csv(tmp_path / "c.csv", rows)
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"include": str(_lm_eval_crows_yaml() / "crows_pairs_english_gender.yaml"),
                                    "dataset_path": "csv", "dataset_kwargs": {"data_files": {"test": str(data)}}}))
    assert [p.sent_more for p in crows.read_pairs(task)] == [ROWS[1][0], ROWS[3][0]]


def test_not_a_crows_task(tmp_path):
    import yaml

    data = write_csv(tmp_path / "c.csv")
    task = tmp_path / "t.yaml"  # lm-eval's arc prompt over CrowS rows: a task, but not a crows_pairs one
    task.write_text(yaml.safe_dump({"task": "x", "dataset_path": "csv", "test_split": "test",
                                    "dataset_kwargs": {"data_files": {"test": str(data)}},
                                    "output_type": "multiple_choice", "doc_to_text": "",
                                    "doc_to_choice": "{{[sent_more, sent_less]}}", "doc_to_target": 0}))
    with pytest.raises(UserError, match="not an lm-eval crows_pairs task"):
        crows.read_pairs(task)


def test_task_code_of_ones_own_is_refused(tmp_path):
    task = tmp_path / "t.yaml"
    task.write_text("task: x\ndoc_to_choice: !function utils.other\n")
    with pytest.raises(UserError, match="allow-task-code"):
        crows.read_pairs(task)
