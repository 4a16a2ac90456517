"""One content key for models, tokenizers, batches and probe inputs; the keys already in stores stay as they were.

The reference is the formula each site used before it shared `content_key`, written out naively here:
sha256 of `json.dumps(obj, sort_keys=True, default=str)` (probe inputs: with `ensure_ascii=False`), first
24 hex digits. The literals were printed by that formula before the change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from beyondscale.interpret.results import data_key
from beyondscale.keys import content_key
from beyondscale.models import model_key, parse_model_ref
from beyondscale.models.facts import tokenizer_key
from beyondscale.work.unit import content_hash

FIXED = {"text": "café ☕", "n": 3, "path": Path("/tmp/x"), "nested": {"b": [1.5, None], "a": True}}


def old(obj: object, **dumps: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, **dumps).encode()).hexdigest()[:24]


def test_the_key_of_a_fixed_input_is_the_old_formulas():
    assert content_key(FIXED) == old(FIXED) == "7c3299204e9dbaadacb16ef1"
    assert content_key(FIXED, ensure_ascii=False) == old(FIXED, ensure_ascii=False) == "a7649a3324d1b186696ee33d"


def test_probe_inputs_keep_their_utf8_key_and_batches_their_ascii_key():
    assert data_key(FIXED) == old(FIXED, ensure_ascii=False)
    assert content_hash(FIXED) == old(FIXED)
    assert data_key(FIXED) != content_hash(FIXED)  # the two formulas differ on non-ASCII text: both kept


def test_model_keys_and_identities_are_unchanged(tiny_llama):
    ref = parse_model_ref(str(tiny_llama))
    assert ref.identity() == hashlib.sha256(json.dumps(ref.identity_parts(), sort_keys=True).encode()).hexdigest()[:24]
    assert model_key(ref, "float32", identity="abc") == old({"identity": "abc", "dtype": "float32"})
    assert model_key(ref, "torch.bfloat16", identity="abc", quantization="int8") == old(
        {"identity": "abc", "dtype": "bfloat16", "quantization": "int8"})


class _SlowTokenizer:
    backend_tokenizer = None
    special_tokens_map = {"eos_token": "</s>"}

    def get_vocab(self) -> dict[str, int]:
        return {"é": 1, "a": 0}


def test_tokenizer_key_is_unchanged():
    tok = _SlowTokenizer()
    expected = old({"tokenizer": sorted(tok.get_vocab().items()), "special": tok.special_tokens_map})
    assert tokenizer_key(tok) == expected
