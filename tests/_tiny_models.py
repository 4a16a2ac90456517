"""Tiny random-init causal LMs and a BPE tokenizer trained on the spot (no downloads).

Weights are drawn with a larger initializer range than usual so the next-token distributions are
peaked: greedy/argmax checks then test something, and near-ties (which float rounding could flip)
are unlikely.
"""

from __future__ import annotations

import functools
import random

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

WORDS = (
    "the a cat dog bird sat on mat ran to house tree big small red blue green quick slow fox "
    "jumped over lazy river water under bright sun moon night day question answer is was and "
    "of in with for it he she they we you not yes no why how what which one two three"
).split()


def corpus(n_lines: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = rng.choices(WORDS, k=rng.randint(4, 14))
        lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ":"]))
    return lines


@functools.cache
def tiny_tokenizer(bos_by_default: bool = False) -> PreTrainedTokenizerFast:
    """Byte-level BPE with <s>/</s>; `bos_by_default` makes encode() prepend <s> (like Gemma)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(), trainer)
    if bos_by_default:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 0)]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def _finish(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    model.eval()
    return model


@functools.cache
def tiny_llama(seed: int = 0, max_positions: int = 128) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tiny_tokenizer()),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        initializer_range=0.3,
        bos_token_id=0,
        eos_token_id=1,
        attn_implementation="sdpa",
    )
    return _finish(LlamaForCausalLM(cfg), seed)


@functools.cache
def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=len(tiny_tokenizer()),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=128,
        initializer_range=0.3,
        bos_token_id=0,
        eos_token_id=1,
    )
    return _finish(GPT2LMHeadModel(cfg), seed)


@functools.cache
def tiny_gemma3(seed: int = 0) -> Gemma3ForCausalLM:
    """Sliding-window layers (window 4) alternating with global ones, logit soft-capping on."""
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(
        vocab_size=len(tiny_tokenizer(True)),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"] * 2,
        final_logit_softcapping=5.0,
        initializer_range=0.3,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        attn_implementation="sdpa",
    )
    return _finish(Gemma3ForCausalLM(cfg), seed)
