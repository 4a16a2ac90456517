"""The vocabulary head applied a few rows at a time into reused buffers: log-probabilities at scored
positions without a [K, V] logits tensor.

Scoring needs, per scored position, log p(target) and whether the target is the argmax. Asking the
model for logits at all K scored positions allocates K x V fresh floats (Gemma-3: 1 MiB a position),
then copies rows out for log_softmax and runs argmax over every row. `ChunkedHead` takes the body's
hidden states at those positions and, for a chunk of rows at a time, writes the head's matmul and
torch.log_softmax into two buffers it reuses, gathers the targets, and runs argmax only on the rows
whose target reaches the row maximum (argmax's tie rule: the first maximal entry wins).

The log-probabilities are torch.log_softmax's in float32, row for row, as lm-evaluation-harness
computes them: a merged per-block log-sum-exp (float64) is closer to the exact value but differs from
lm-eval's float32 sum by ~2e-5 a token on a 262k vocabulary, ~1e-3 over a sentence.

`ChunkedHead.of(model)` returns None unless the model's own forward is body -> plain Linear head
(-> optional final logit softcapping), checked once on a few tokens against the model's logits;
other models keep the model's own head (scoring.SpanScorer falls back).
"""

from __future__ import annotations

import weakref

import torch

# float32 elements per row chunk of logits (and again for its log_softmax): 128 MiB each on CPU,
# 128 Gemma-3 rows; a smaller chunk re-reads the head's weights (671 MB for Gemma-3) more often.
CPU_CHUNK_ELEMS = 1 << 25
CUDA_CHUNK_ELEMS = 1 << 27

# model -> (its head module, that head's weight, the checked ChunkedHead or None): an engine per run on
# the same model checks once (the check reads the whole head: ~0.1 s for Gemma-3 on CPU).
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ChunkedHead:
    """Body hidden states -> (log p(target), target is argmax), a chunk of rows at a time."""

    def __init__(self, body: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor | None,
                 softcap: float | None) -> None:
        self.body, self.weight, self.bias, self.softcap = body, weight, bias, softcap
        self.chunk_elems = CUDA_CHUNK_ELEMS if weight.device.type == "cuda" else CPU_CHUNK_ELEMS

    @classmethod
    def of(cls, model) -> ChunkedHead | None:
        """The model's body and head when its logits are exactly head(body(x)), else None."""
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        body = getattr(model, "base_model", None)
        weight = getattr(head, "weight", None)
        if type(head) is not torch.nn.Linear or not isinstance(body, torch.nn.Module) or body is model:
            return None
        if type(weight) not in (torch.Tensor, torch.nn.Parameter) or weight.is_quantized:
            return None
        config = getattr(model, "config", None)
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        softcap = getattr(text_config, "final_logit_softcapping", None) or None
        known = _CHECKED.get(model)
        if known is not None and known[0] is head and known[1] is weight:
            return known[2]
        candidate = cls(body, weight, head.bias, softcap)
        result = candidate if candidate._agrees_with(model) else None
        _CHECKED[model] = (head, weight, result)
        return result

    @torch.inference_mode()
    def _agrees_with(self, model) -> bool:
        """Logits through body + this head equal the model's own on a few tokens."""
        vocab = self.weight.shape[0]
        ids = (torch.arange(1, 6, device=self.weight.device) * 7919 % vocab)[None]
        try:
            theirs = model(input_ids=ids, use_cache=False).logits[0].float()
            hidden = self.body(input_ids=ids, use_cache=False).last_hidden_state[0]
        except Exception:  # noqa: BLE001 - any model this head cannot drive keeps its own
            return False
        ours = self.logits(hidden).float()
        tol = 1e-4 * max(1.0, float(theirs.abs().max()))
        return ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=tol, rtol=1e-4)

    def logits(self, hidden: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The model's logits for `hidden` [R, H], computed as its head computes them."""
        x = torch.mm(hidden, self.weight.T, out=out)
        if self.bias is not None:
            x += self.bias
        if self.softcap:
            x.div_(self.softcap).tanh_().mul_(self.softcap)
        return x

    def logprobs(self, hidden: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """log_softmax(logits)[row, target] (float32) and argmax == target, for each (row, target) pair."""
        vocab, dev = self.weight.shape[0], hidden.device
        n_chunks = -(-len(hidden) // max(1, self.chunk_elems // vocab))
        step = max(1, -(-len(hidden) // max(1, n_chunks)))  # equal chunks: a small last one re-reads the weights
        logits = torch.empty((step, vocab), dtype=hidden.dtype, device=dev)
        logprobs = torch.empty((step, vocab), dtype=torch.float32, device=dev)
        picked = torch.empty(len(targets), dtype=torch.float32, device=dev)
        greedy = torch.zeros(len(targets), dtype=torch.bool, device=dev)
        chunk_of = rows // step
        for c, start in enumerate(range(0, len(hidden), step)):
            n = min(step, len(hidden) - start)
            here = (chunk_of == c).nonzero().squeeze(1)
            if not len(here):
                continue
            x = self.logits(hidden[start : start + n], out=logits[:n])
            lsm = torch.log_softmax(x.float(), -1, out=logprobs[:n])
            r, t = rows[here] - start, targets[here]
            picked[here] = lsm[r, t]
            greedy[here] = first_maximum(lsm, r, t)
        return picked, greedy


def first_maximum(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x.argmax(1)[rows] == cols without argmax over every row (argmax is ~5x slower than amax on CPU).

    An entry that reaches its row's maximum is the argmax when, with it hidden, the row's maximum is
    lower; rows where another entry ties (or two scored entries both reach the maximum) take argmax.
    `x` is restored before returning."""
    row_max = x.amax(1)
    hit = (x[rows, cols] == row_max[rows]).nonzero().squeeze(1)
    out = torch.zeros(len(rows), dtype=torch.bool, device=x.device)
    if not len(hit):
        return out
    hr, hc = rows[hit], cols[hit]
    x[hr, hc] = float("-inf")
    alone = x.amax(1)[hr] < row_max[hr]
    x[hr, hc] = row_max[hr]
    distinct_rows = torch.unique(hr * x.shape[1] + hc) // x.shape[1]
    alone &= torch.bincount(distinct_rows, minlength=len(x))[hr] == 1
    tied = (~alone).nonzero().squeeze(1)
    if len(tied):
        alone[tied] = x[hr[tied]].argmax(1) == hc[tied]
    out[hit] = alone
    return out
