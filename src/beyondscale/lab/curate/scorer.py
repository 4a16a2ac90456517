"""A learned quality scorer in the FineWeb-Edu / DCLM spirit, trained on a CPU in seconds.

Hashed word 1-2-grams (scikit-learn's `HashingVectorizer`, stateless, so nothing but the
weights needs saving) and a logistic regression separate the user's high-quality examples from
the low-quality ones; the score is P(high). The scorer is saved as safetensors (weights) with
its settings and held-out accuracy in the metadata: loading it runs no code and unpickles nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beyondscale.errors import UserError

FORMAT = "beyondscale-quality-scorer/1"
DEFAULT_FEATURES = 2**20


def _vectorizer(n_features: int, ngram_max: int) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=n_features, ngram_range=(1, ngram_max), alternate_sign=False,
                             lowercase=True, norm="l2", dtype=np.float32)


@dataclass
class QualityClassifier:
    """Weights over hashed n-grams; `score(texts)` gives P(high quality) for each text."""

    coef: np.ndarray
    intercept: float
    n_features: int = DEFAULT_FEATURES
    ngram_max: int = 2
    info: dict[str, Any] = field(default_factory=dict)

    def score(self, texts: list[str]) -> np.ndarray:
        """P(high) per text (a logistic of the linear margin)."""
        features = _vectorizer(self.n_features, self.ngram_max).transform(texts)
        margin = features @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64)))

    def save(self, path: str | Path) -> str:
        """Write safetensors (weights + JSON metadata); returns the file's content hash."""
        from safetensors.numpy import save_file

        meta = {"format": FORMAT, "n_features": str(self.n_features), "ngram_max": str(self.ngram_max),
                "info": json.dumps(self.info, sort_keys=True)}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"coef": self.coef.astype(np.float32),
                   "intercept": np.array([self.intercept], dtype=np.float32)}, str(path), metadata=meta)
        return file_hash(path)


def file_hash(path: str | Path) -> str:
    """sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_scorer(path: str | Path) -> QualityClassifier:
    """Read a saved scorer; any other file is refused with one line naming it."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--scorer {path}: no such file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            coef, intercept = handle.get_tensor("coef"), handle.get_tensor("intercept")
    except Exception as error:  # noqa: BLE001 - a corrupt or foreign file is the user's to fix
        raise UserError(f"--scorer {path}: not a saved quality scorer ({type(error).__name__})") from None
    if meta.get("format") != FORMAT or coef.shape != (int(meta["n_features"]),):
        raise UserError(f"--scorer {path}: not a {FORMAT} file")
    return QualityClassifier(coef, float(intercept[0]), int(meta["n_features"]), int(meta["ngram_max"]),
                  json.loads(meta.get("info", "{}")))


def _fit(texts: list[str], labels: np.ndarray, n_features: int, ngram_max: int, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    features = _vectorizer(n_features, ngram_max).transform(texts)
    return LogisticRegression(C=c, max_iter=1000, solver="liblinear").fit(features, labels)


def _holdout(texts: list[str], labels: np.ndarray, n_features: int, ngram_max: int, c: float,
             seed: int) -> dict[str, float]:
    """Accuracy and ROC AUC on a stratified 20 % held out from training (measured, not assumed)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(texts, labels, test_size=0.2, stratify=labels,
                                                        random_state=seed)
    model = _fit(train_x, train_y, n_features, ngram_max, c)
    proba = model.predict_proba(_vectorizer(n_features, ngram_max).transform(test_x))[:, 1]
    return {"heldout_accuracy": float(np.mean((proba >= 0.5) == test_y)),
            "heldout_auc": float(roc_auc_score(test_y, proba)), "heldout_n": len(test_y)}


def train_scorer(high: list[str], low: list[str], n_features: int = DEFAULT_FEATURES, ngram_max: int = 2,
                 c: float = 1.0, seed: int = 0) -> QualityClassifier:
    """Fit on all examples; report held-out accuracy first when each side has at least 10."""
    if len(high) < 2 or len(low) < 2:
        raise UserError(f"--train-scorer: need at least 2 high and 2 low examples (got {len(high)} and {len(low)})")
    start = time.perf_counter()
    texts = high + low
    labels = np.array([1] * len(high) + [0] * len(low))
    info: dict[str, Any] = {"n_high": len(high), "n_low": len(low), "c": c, "seed": seed}
    if min(len(high), len(low)) >= 10:
        info.update(_holdout(texts, labels, n_features, ngram_max, c, seed))
    model = _fit(texts, labels, n_features, ngram_max, c)
    info["train_seconds"] = round(time.perf_counter() - start, 3)
    return QualityClassifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]), n_features, ngram_max, info)
