"""Tokenizers for the lab: a byte-level BPE trained on the corpus, or an existing HF tokenizer.

Saved in Hugging Face format next to the weights, so `AutoTokenizer.from_pretrained(DIR)` works
with no beyondscale code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from beyondscale.errors import UserError

EOS = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style: every byte is in the base alphabet, so nothing is ever unknown)."""
    if vocab_size < 257 + 1:
        raise UserError(f"--vocab-size {vocab_size}: must be at least 258 (256 bytes + end-of-text + 1 merge)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=None,
                                   model_max_length=1 << 30)


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """An existing HF tokenizer (local folder or cached hub id); it must have an end-of-text token."""
    try:
        tok = AutoTokenizer.from_pretrained(spec, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise UserError(f"--tokenizer {spec}: cannot load a Hugging Face tokenizer ({err})") from None
    if tok.eos_token_id is None:
        raise UserError(f"--tokenizer {spec}: the tokenizer has no end-of-text (eos) token to separate documents")
    return tok


def save_tokenizer(tok: PreTrainedTokenizerBase, out: Path) -> None:
    tok.save_pretrained(str(out))
