"""Duplicate removal: exact (content hash) and near-duplicate (MinHash LSH, datasketch).

The first document of a cluster is kept, later ones are removed with the id they duplicate.
Signatures are computed in the worker processes (`signature`); the index lives in the main
process. Memory grows with the number of kept documents only (16 bytes each for exact; about
`4 * num_perm` bytes plus datasketch's band tables for MinHash), never with their text.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

WORD = re.compile(r"\w+")


def exact_key(text: str) -> bytes:
    """16-byte content hash of the text as it will be written."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def shingles(text: str, ngram: int) -> list[bytes]:
    """Lower-cased word n-grams (punctuation and spacing ignored); a shorter text is one shingle."""
    words = WORD.findall(text.lower())
    if len(words) <= ngram:
        return [" ".join(words).encode("utf-8")]
    return [" ".join(words[i:i + ngram]).encode("utf-8") for i in range(len(words) - ngram + 1)]


def signature(text: str, num_perm: int, ngram: int, seed: int = 1) -> Any:
    """datasketch MinHash of the text's shingles (a picklable LeanMinHash)."""
    from datasketch import LeanMinHash, MinHash

    minhash = MinHash(num_perm=num_perm, seed=seed)
    minhash.update_batch(list(set(shingles(text, ngram))))
    return LeanMinHash(minhash)


class ExactDedup:
    """Keeps the first of each set of byte-identical texts."""

    def __init__(self) -> None:
        self.seen: dict[bytes, str] = {}

    def check(self, doc_id: str, text: str) -> str | None:
        """The id this text duplicates, or None (and it is remembered)."""
        key = exact_key(text)
        first = self.seen.get(key)
        if first is None:
            self.seen[key] = doc_id
        return first


class MinHashDedup:
    """Near-duplicates at Jaccard >= threshold: LSH finds candidates, their signatures confirm."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.num_perm = threshold, num_perm
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.ids: list[str] = []
        self.sigs: list[bytes] = []

    def check(self, doc_id: str, lean: Any) -> str | None:
        """The id of a kept document this one is a near-duplicate of, or None (then it is indexed).

        An LSH candidate counts only if the signatures agree on >= threshold of their slots (the
        MinHash estimate of Jaccard similarity), so LSH's false positives are not removed.
        """
        mine = np.asarray(lean.hashvalues).astype(np.uint32)
        for key in sorted(self.lsh.query(lean)):
            theirs = np.frombuffer(self.sigs[key], dtype=np.uint32)
            if float(np.mean(theirs == mine)) >= self.threshold:
                return self.ids[key]
        self.lsh.insert(len(self.ids), lean, check_duplication=False)
        self.ids.append(doc_id)
        self.sigs.append(mine.tobytes())
        return None
