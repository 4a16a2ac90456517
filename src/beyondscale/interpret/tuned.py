"""An affine lens: per-layer translators fitted in closed form, a cheap stand-in for the tuned lens.

The tuned lens (Belrose et al. 2023) trains, per layer l, an affine map h -> A_l h + b_l so that
reading it through the final norm and unembedding matches the final distribution (KL objective,
SGD). Here each map is fitted by ridge least squares to the last layer's *pre-norm* residual,
shrunk towards the identity (the tuned lens's initialisation):
    argmin_{A,b} ||H_l A + b - H_final||^2 + ridge * n * ||A - I||^2,
solved exactly (normal equations, float64). It is labelled "affine lens", never "tuned lens".
Fitting text: the offline stdlib-docstring corpus of the quickstart (or texts you pass); the lens
is then evaluated on other text, like the logit lens.
"""

from __future__ import annotations

from typing import Any

import torch

from beyondscale.errors import UserError

PROBE_VERSION = "affine-lens-1"
DEFAULT_RIDGE = 1e-2


def final_prenorm_states(model: Any, parts: Any, input_ids: torch.Tensor) -> tuple[tuple[torch.Tensor, ...],
                                                                                      torch.Tensor]:
    """(hidden states 0..L-1, the last layer's residual before the final norm), for one sequence."""
    from beyondscale.interpret.lens import hidden_states

    seen: list[torch.Tensor] = []
    hook = parts.norm.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    try:
        states, _ = hidden_states(model, input_ids)
    finally:
        hook.remove()
    if not seen:
        raise UserError(f"{type(model).__name__}: the final norm was not called; affine lens refused")
    return states[:-1], seen[-1]


class NormalEquations:
    """Running X'X and X'Y per layer (X with a ones column), so fitting text never has to stay in memory."""

    def __init__(self) -> None:
        self.xtx: list[torch.Tensor] = []
        self.xty: list[torch.Tensor] = []
        self.n = 0

    def add(self, xs: list[torch.Tensor], y: torch.Tensor) -> None:
        y64 = y.double().cpu()
        ones = torch.ones(y.shape[0], 1, dtype=torch.float64)
        for i, x in enumerate(xs):
            xa = torch.cat([x.double().cpu(), ones], 1)
            if i == len(self.xtx):
                self.xtx.append(torch.zeros(xa.shape[1], xa.shape[1], dtype=torch.float64))
                self.xty.append(torch.zeros(xa.shape[1], y.shape[1], dtype=torch.float64))
            self.xtx[i] += xa.T @ xa
            self.xty[i] += xa.T @ y64
        self.n += y.shape[0]

    def solve(self, ridge: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (A, b) minimising ||X A + b - Y||^2 + ridge * n * ||A - I||^2 (float64)."""
        out = []
        for xtx, xty in zip(self.xtx, self.xty, strict=True):
            d = xty.shape[1]
            reg = torch.eye(d + 1, dtype=torch.float64) * ridge * self.n
            reg[d, d] = 0.0  # the bias is not shrunk
            prior = torch.cat([torch.eye(d, dtype=torch.float64), torch.zeros(1, d, dtype=torch.float64)])
            theta = torch.linalg.solve(xtx + reg, xty + prior * ridge * self.n)
            out.append((theta[:d].float(), theta[d].float()))
        return out


def fit_translators(xs: list[torch.Tensor], y: torch.Tensor, ridge: float = DEFAULT_RIDGE) -> list[tuple]:
    """Per layer (A, b) for states already in memory (see NormalEquations.solve)."""
    eq = NormalEquations()
    eq.add(xs, y)
    return eq.solve(ridge)


def fit_affine_lens(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                    ridge: float = DEFAULT_RIDGE) -> list[tuple]:
    from beyondscale.interpret.lens import encode_text, find_parts

    parts = find_parts(model)
    eq = NormalEquations()
    for text in texts:
        ids = encode_text(tokenizer, text, 1 << 30)[:, :max_length].to(parts.weight.device)  # fitting text: cut
        states, final = final_prenorm_states(model, parts, ids)
        eq.add([h[0] for h in states], final[0])
    if eq.n == 0:
        raise UserError("affine lens: no fitting text")
    return eq.solve(ridge)


def corpus_texts(n_docs: int, max_chars: int = 1200) -> list[str]:
    """The first n documents of the offline stdlib-docstring corpus (deterministic order)."""
    from beyondscale.corpora.stdlib_prose import load_corpus

    docs = load_corpus().documents
    step = max(1, len(docs) // max(1, n_docs))  # spread over the whole library, not its first modules
    return [d.text[:max_chars] for d in docs[::step][:n_docs]]
