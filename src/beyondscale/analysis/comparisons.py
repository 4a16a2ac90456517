"""Paired comparisons of every pair of models on each task, on the newest task version both have.

Pairs are oriented by size order (size, model key): `model_a` is not bigger than `model_b`. A row is
significant when its Holm-adjusted p (over the tasks of that comparison, one family per pair and metric
kind) is below ALPHA; `better` names the model it favours, so a significant row counts only in the
direction it points. The `flag` is set only when b is really bigger (see `size_relation`): "bigger but not
significantly better" or "bigger and significantly worse".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis.inputs import NON_QUALITY, size_relation
from beyondscale.analysis.marginal import higher_is_better
from beyondscale.analysis.paired import (
    LN2,
    MIN_ITEMS,
    bits_per_byte,
    bootstrap_bpb,
    bootstrap_means,
    count_matrix,
    holm,
    is_binary,
    mcnemar_exact,
    p_floor,
    percentile_ci,
    sign_flip_p,
)
from beyondscale.analysis.versions import Versions

ALPHA = 0.05
FLAG = "bigger but not significantly better"
WORSE = "bigger and significantly worse"


def _matrices(it: pd.DataFrame, keys: list[str], wanted: list[str]) -> dict[str, np.ndarray]:
    """{metric: (n_docs, n_models)} per-item values; NaN where a model lacks an item."""
    doc_codes, docs = pd.factorize(it["doc_id"])
    model_codes = pd.Index(keys).get_indexer(it["model_key"])
    vals = it["value"].to_numpy(float)
    metric = it["metric"].to_numpy(object)
    out = {}
    for m in wanted:
        sel = (metric == m) & (model_codes >= 0)
        arr = np.full((len(docs), len(keys)), np.nan)
        arr[doc_codes[sel], model_codes[sel]] = vals[sel]
        out[m] = arr
    return out


def _metric_values(piv: dict[str, np.ndarray], m: str) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    vals = (piv["logprob"], piv["bytes"]) if m == "bits_per_byte" else (piv[m],)
    mask = np.logical_and.reduce([np.isfinite(v) for v in vals])
    keep = mask.any(axis=1)
    return tuple(v[keep] for v in vals), mask[keep]


def _flip_stat(sub: list[np.ndarray], ia: np.ndarray, ib: np.ndarray, metric: str) -> Callable[[np.ndarray], np.ndarray]:
    """The effect b - a of every pair under a (k, n) array of swap patterns (1: the item's values swapped)."""
    if metric == "bits_per_byte":
        la, lb, ba, bb = sub[0][:, ia], sub[0][:, ib], sub[1][:, ia], sub[1][:, ib]
        dl, db = la - lb, ba - bb

        def stat(f: np.ndarray) -> np.ndarray:
            return (-(lb.sum(0) + f @ dl) / (bb.sum(0) + f @ db) + (la.sum(0) - f @ dl) / (ba.sum(0) - f @ db)) / LN2
        return stat
    d = sub[0][:, ib] - sub[0][:, ia]
    n = d.shape[0]
    return lambda f: ((1.0 - 2.0 * f) @ d) / n


def _test(sub: list[np.ndarray], ia: np.ndarray, ib: np.ndarray, metric: str, binary: bool, effect: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(p, floor, test name) for each pair: McNemar for 0/1 values, else the paired sign-flip test."""
    n = sub[0].shape[0]
    if n < MIN_ITEMS:
        nan = np.full(len(ia), np.nan)
        return nan, nan, "too few items"
    if binary:
        disc = sub[0].T @ (1.0 - sub[0])  # [i, j]: items i got right and j wrong
        b, c = disc[ia, ib], disc[ib, ia]
        return mcnemar_exact(b, c), np.where(b + c > 0, 2.0 / 2.0 ** (b + c), 1.0), "mcnemar"
    p, exact = sign_flip_p(_flip_stat(sub, ia, ib, metric), effect, n, rng)
    differ = (sub[0][:, ia] != sub[0][:, ib]).sum(axis=0)
    return p, np.array([p_floor(int(k), exact) for k in differ]), "sign_flip_exact" if exact else "sign_flip_mc"


def _group_stats(prs: list[tuple[int, int]], sub: list[np.ndarray], cols: list[int], metric: str, binary: bool,
                 counts: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Effects, CIs and p for pairs sharing one item set; sub holds those items' values for `cols`."""
    pos = {c: k for k, c in enumerate(cols)}
    ia, ib = np.array([pos[i] for i, _ in prs]), np.array([pos[j] for _, j in prs])
    if metric == "bits_per_byte":
        point, boot = bits_per_byte(sub[0], sub[1]), bootstrap_bpb(sub[0], sub[1], counts)
    else:
        point, boot = sub[0].mean(axis=0), bootstrap_means(sub[0], counts)
    effect = point[ib] - point[ia]
    lo = hi = np.full(len(prs), np.nan)
    if counts.shape[0] > 0:
        bd = boot[:, ib] - boot[:, ia]
        lo, hi = percentile_ci(bd)
    p, floor, test = _test(sub, ia, ib, metric, binary, effect, rng)
    n = sub[0].shape[0]
    return [{"n_items": n, "effect": float(effect[k]), "ci_low": float(lo[k]), "ci_high": float(hi[k]),
             "p_value": float(p[k]), "p_floor": float(floor[k]), "test": test} for k in range(len(prs))]


def pairs_for_metric(pairs: list[tuple[int, int]], vals: tuple[np.ndarray, ...], mask: np.ndarray, metric: str,
                     binary: bool, n_boot: int, rng: np.random.Generator) -> dict[tuple[int, int], dict | None]:
    """Effect b - a, percentile CI and p for each pair (i, j) of columns, on the items both have.

    Pairs with the same item set share one resample matrix and one vectorised bootstrap (items resampled
    jointly for all models), as when every model scored every item."""
    groups: dict[bytes, tuple[np.ndarray, list[tuple[int, int]]]] = {}
    for i, j in pairs:
        rows = mask[:, i] & mask[:, j]
        groups.setdefault(rows.tobytes(), (rows, []))[1].append((i, j))
    out: dict[tuple[int, int], dict[str, Any] | None] = {}
    for rows, prs in groups.values():
        n = int(rows.sum())
        if n == 0:
            out.update({pr: None for pr in prs})
            continue
        cols = sorted({c for pr in prs for c in pr})
        counts = count_matrix(n, n_boot, rng) if n_boot > 0 else np.zeros((0, n))
        stats = _group_stats(prs, [v[rows][:, cols] for v in vals], cols, metric, binary, counts, rng)
        out.update(zip(prs, stats, strict=True))
    return out


def _task_metrics(present: set[str], reported: set[str] | None, metrics: list[str] | None) -> list[str]:
    qual = sorted(m for m in present if m not in NON_QUALITY and (metrics is None or m in metrics)
                  and (reported is None or m in reported))
    if {"logprob", "bytes"} <= present and (metrics is None or "bits_per_byte" in metrics) \
            and (reported is None or "bits_per_byte" in reported):
        qual.append("bits_per_byte")
    return qual


def _version_rows(task: str, tk: str, it: pd.DataFrame, keys: list[str], pairs: list[tuple[int, int]],
                  metrics: list[str], n_boot: int, seed: list[int]) -> list[dict[str, Any]]:
    wanted = sorted(({"logprob", "bytes"} if "bits_per_byte" in metrics else set())
                    | {m for m in metrics if m != "bits_per_byte"})
    piv = _matrices(it, keys, wanted)
    rows = []
    for mi, m in enumerate(metrics):
        vals, mask = _metric_values(piv, m)
        binary = m != "bits_per_byte" and is_binary(vals[0])
        res = pairs_for_metric(pairs, vals, mask, m, binary, n_boot, np.random.default_rng([*seed, mi]))
        for (i, j), r in res.items():
            if r is not None:
                rows.append({"task": task, "task_key": tk, "metric": m, "model_key_a": keys[i], "model_key_b": keys[j],
                             **r})
    return rows


def paired_rows(items: pd.DataFrame, order: list[str], versions: Versions, scored: dict[str, set[str]],
                metrics: list[str] | None, n_boot: int, seed: int) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Raw paired rows for every task and pair on their newest common version; and the pairs with none."""
    rows: list[dict[str, Any]] = []
    unshared: list[tuple[str, str, str]] = []
    for ti, (task, it_task) in enumerate(items.groupby("task", sort=False)):
        task = str(task)
        have = set(it_task["model_key"])
        keys = [k for k in order if k in have]
        by_version: dict[str, list[tuple[int, int]]] = {}
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                tk = versions.common(keys[i], keys[j], task)
                if tk is None:
                    unshared.append((task, keys[i], keys[j]))
                else:
                    by_version.setdefault(tk, []).append((i, j))
        for vi, (tk, pairs) in enumerate(by_version.items()):
            it = it_task[it_task["task_key"] == tk]
            ms = _task_metrics(set(it["metric"].astype(str)), scored.get(task), metrics)
            n_rows = len(rows)
            rows += _version_rows(task, tk, it, keys, pairs, ms, n_boot, [seed, ti, vi])
            found = {(r["model_key_a"], r["model_key_b"]) for r in rows[n_rows:]}
            unshared += [(task, keys[i], keys[j]) for i, j in pairs if (keys[i], keys[j]) not in found]
    return rows, unshared


def finish_paired(rows: list[dict[str, Any]], primary: dict[str, str], names: dict[str, str],
                  sizes: dict[str, float]) -> pd.DataFrame:
    """Holm over each comparison's tasks, direction (`better`), names and the bigger-but-not-better flag."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["primary"] = [primary.get(t) == m for t, m in zip(df["task"], df["metric"], strict=True)]
    family = np.where(df["primary"], "primary", df["metric"])
    df["p_adjusted"] = df.groupby([df["model_key_a"], df["model_key_b"], family])["p_value"].transform(
        lambda s: pd.Series(holm(s.to_numpy(float)), index=s.index))
    df["n_tests"] = df.groupby([df["model_key_a"], df["model_key_b"], family])["p_value"].transform("count")
    df["significant"] = df["p_adjusted"] < ALPHA
    b_better = np.where([higher_is_better(m) for m in df["metric"]], df["effect"] > 0, df["effect"] < 0)
    df["model_a"] = df["model_key_a"].map(names)
    df["model_b"] = df["model_key_b"].map(names)
    df["better"] = np.where(df["significant"], np.where(b_better, df["model_b"], df["model_a"]), "")
    bigger = [size_relation(sizes.get(a, np.nan), sizes.get(b, np.nan)) == -1
              for a, b in zip(df["model_key_a"], df["model_key_b"], strict=True)]
    bigger = np.asarray(bigger, dtype=bool)
    df["flag"] = np.where(bigger & ~df["significant"], FLAG, np.where(bigger & df["significant"] & ~b_better, WORSE, ""))
    return df
