"""Reliability-diagram bins: does a model's confidence mean what it says, and does scale change that?"""

from __future__ import annotations

import numpy as np
import pandas as pd


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Equal-mass bins (sorted by confidence): bin, confidence (mean), accuracy (mean), count.

    Equal-mass rather than equal-width so every bin holds enough items to mean something.
    """
    conf = np.asarray(confidence, dtype=float)
    acc = np.asarray(correct, dtype=float)
    ok = np.isfinite(conf) & np.isfinite(acc)
    conf, acc = conf[ok], acc[ok]
    if conf.size == 0:
        return pd.DataFrame(columns=["bin", "confidence", "accuracy", "count"])
    order = np.argsort(conf, kind="stable")
    chunks = [c for c in np.array_split(order, min(n_bins, conf.size)) if c.size]
    return pd.DataFrame({
        "bin": np.arange(len(chunks)),
        "confidence": [float(conf[c].mean()) for c in chunks],
        "accuracy": [float(acc[c].mean()) for c in chunks],
        "count": [int(c.size) for c in chunks],
    })


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """ECE of a set of bins: count-weighted mean |accuracy - confidence|."""
    if bins.empty:
        return float("nan")
    w = bins["count"].to_numpy(float)
    return float(np.sum(w * np.abs(bins["accuracy"].to_numpy(float) - bins["confidence"].to_numpy(float))) / w.sum())


def calibration_rows(names: dict[str, str], items: pd.DataFrame, tasks: list[str]) -> list[dict]:
    """Reliability bins per (model, task) from per-item confidence and acc."""
    rows: list[dict] = []
    it = items[items["metric"].isin(["confidence", "acc"]) & items["task"].isin(tasks)]
    for (k, task), g in it.groupby(["model_key", "task"], sort=False):
        doc_codes, docs = pd.factorize(g["doc_id"])
        is_conf = (g["metric"] == "confidence").to_numpy()
        arr = np.full((len(docs), 2), np.nan)
        arr[doc_codes, is_conf.astype(int)] = g["value"].to_numpy(float)
        if np.isnan(arr[:, 1]).all() or np.isnan(arr[:, 0]).all():
            continue
        b = calibration_bins(arr[:, 1], arr[:, 0])
        rows += [{"model": names.get(str(k), str(k)), "task": task, **r} for r in b.to_dict("records")]
    return rows
