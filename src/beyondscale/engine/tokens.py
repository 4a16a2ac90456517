"""Turning text into token requests exactly as lm-evaluation-harness's HF backend does.

Every rule here mirrors lm_eval/models/huggingface.py and lm_eval/api/model.py (v0.4.13), because
scores are only comparable with published lm-eval numbers if the model sees the same tokens:
  - `_encode_pair`: trailing whitespace of the context moves to the continuation; context and
    context+continuation are encoded separately and the continuation is `whole[len(context):]`.
  - empty context: the prefix token (BOS if the tokenizer has one, else EOS) is the context.
  - `add_bos_token=None` leaves special tokens to the tokenizer's own default (so Gemma gets its
    BOS, GPT-2/SmolLM2 get none), as lm-eval >= 0.4.9 does.
  - left truncation: the model input is `(context + continuation)[-(max_length + 1):][:-1]`.
  - rolling windows: `get_rolling_token_windows(context_len=1)` + `make_disjoint_window`.
"""

from __future__ import annotations

from dataclasses import dataclass

from beyondscale.errors import UserError

TOKENIZER_INFINITY = 1000000000000000019884624838656
DEFAULT_MAX_LENGTH = 2048


def resolve_max_length(config, tokenizer) -> int:
    """lm-eval's context length: config n_positions / max_position_embeddings / n_ctx, then the
    tokenizer's model_max_length unless it is the 'unset' sentinel, else 2048."""
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    model_max_length = getattr(tokenizer, "model_max_length", None)
    if model_max_length is not None and model_max_length != TOKENIZER_INFINITY:
        return int(model_max_length)
    return DEFAULT_MAX_LENGTH


@dataclass
class Span:
    """One scored span: `seq[:-1]` is the model input, the last `n_scored` tokens of `seq` are scored
    (each predicted from the position before it). `slot` says which choice/window it belongs to."""

    slot: int
    seq: list[int]
    n_scored: int


class LmEvalTokenizer:
    """Wraps an HF tokenizer with lm-eval's encoding conventions."""

    def __init__(self, tokenizer, add_bos_token: bool | None = None) -> None:
        self.tokenizer = tokenizer
        self.add_bos_token = add_bos_token
        self.prefix_token_id: int = (
            tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        )
        if self.prefix_token_id is None:
            raise UserError("tokenizer: has neither a bos_token nor an eos_token to condition on")
        self._prefix_str = tokenizer.decode(self.prefix_token_id)

    # ---- lm-eval's tok_encode / _encode_pair ----------------------------------------------------
    def _special_kwargs(self, add_special_tokens: bool | None) -> dict:
        if add_special_tokens is not None:
            return {"add_special_tokens": add_special_tokens}
        if self.add_bos_token is not None:
            return {"add_special_tokens": self.add_bos_token}
        return {}

    def _ensure_bos(self, ids: list[int], kwargs: dict) -> list[int]:
        # lm-eval builds its tokenizer with add_bos_token=True in that case; for a tokenizer handed
        # to us ready-made, prepend BOS ourselves when it would not.
        bos = self.tokenizer.bos_token_id
        if self.add_bos_token and kwargs.get("add_special_tokens") and bos is not None:
            if not ids or ids[0] != bos:
                ids = [bos, *ids]
        return ids

    def encode(self, string: str, add_special_tokens: bool | None = None) -> list[int]:
        """lm-eval's `tok_encode`: a string already starting with the prefix token gets no specials."""
        kwargs = self._special_kwargs(add_special_tokens)
        if add_special_tokens is None and string.startswith(self._prefix_str):
            kwargs["add_special_tokens"] = False
        ids = list(self.tokenizer.encode(string, **kwargs))
        return self._ensure_bos(ids, kwargs)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's `loglikelihood` tokenisation of one (context, continuation) request."""
        if context == "":
            cont = self.encode(continuation, add_special_tokens=False)
            if not cont:
                raise UserError("task item: empty continuation with an empty context cannot be scored")
            if cont[0] != self.prefix_token_id:
                return [self.prefix_token_id], cont
            return cont[:1], cont[1:]
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]

    def encode_generation_context(self, context: str) -> list[int]:
        """lm-eval's `tok_batch_encode` rule for generation prompts (checks the BOS *string*)."""
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos is not None and context.startswith(bos):
            kwargs = {"add_special_tokens": False}
        else:
            kwargs = self._special_kwargs(None)
        ids = list(self.tokenizer(context, **kwargs)["input_ids"])
        return self._ensure_bos(ids, kwargs)


def loglik_span(slot: int, ctx: list[int], cont: list[int], max_length: int) -> Span:
    """A (context, continuation) pair after lm-eval's left truncation to max_length + 1 tokens."""
    if not cont:
        raise UserError("task item: a continuation encodes to zero tokens; nothing to score")
    if len(cont) > max_length:
        raise UserError(f"task item: continuation has {len(cont)} tokens, more than max_length={max_length}")
    return Span(slot, (ctx + cont)[-(max_length + 1) :], len(cont))


def rolling_spans(tokens: list[int], prefix_token: int, max_length: int, stride: int | None) -> list[Span]:
    """Windows that score every token once.

    With stride None (= max_length) these are exactly lm-eval's disjoint rolling windows: the first
    window reads [prefix] + tokens[:L-1]; each later window scores the next L tokens with the token
    before them as context, and the last one reads a full L tokens of context. A smaller stride
    scores `stride` new tokens per window with up to L tokens of context (HF's strided perplexity).
    """
    stride = max_length if stride is None else stride
    if not 1 <= stride <= max_length:
        raise UserError(f"rolling_stride: must be between 1 and max_length={max_length}, got {stride}")
    seq = [prefix_token, *tokens]  # token i of the document sits at seq[i + 1]
    spans, start = [], 0
    while start < len(tokens):
        end = min(len(tokens), max_length if start == 0 else start + stride)
        spans.append(Span(len(spans), seq[max(0, end - max_length) : end + 1], end - start))
        start = end
    return spans
