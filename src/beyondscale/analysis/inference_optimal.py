"""The inference-aware optimum (Sardana et al. 2024, "Beyond Chinchilla-Optimal").

With a fitted L(N, D) = E + A N^-alpha + B D^-beta, a model of quality `loss` that will serve
`inference_tokens` tokens costs 6 N D_train (training) + 2 N D_inference (serving) FLOPs. For each N
whose parameter term leaves room (A N^-alpha < loss - E), the loss constraint fixes
D_train(N) = (B / (loss - E - A N^-alpha))^(1/beta); the optimum minimises the total over N, a
one-dimensional problem on log N (bounded scalar minimisation, then polished).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from beyondscale.analysis.fits import compute_optimal
from beyondscale.errors import UserError

#: Hoffmann et al. 2022, approach 3: the fit with the exponents as given in their appendix (0.3392, 0.2849),
#: the same rounded as in their eq. 10, and the Epoch AI replication (Besiroglu et al. 2024).
CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.3392, "B": 410.7, "beta": 0.2849}
CHINCHILLA_ROUNDED = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
EPOCH_REPLICATION = {"E": 1.8172, "A": 482.01, "alpha": 0.3478, "B": 2085.43, "beta": 0.3658}


@dataclass(frozen=True)
class Plan:
    params: float
    train_tokens: float
    train_flops: float
    inference_flops: float

    @property
    def total_flops(self) -> float:
        return self.train_flops + self.inference_flops

    def to_dict(self) -> dict:
        return {**asdict(self), "total_flops": self.total_flops}


def loss_nd(n: float, d: float, E: float, A: float, alpha: float, B: float, beta: float) -> float:
    return E + A * n ** -alpha + B * d ** -beta


def tokens_for_loss(n: float | np.ndarray, loss: float, E: float, A: float, alpha: float, B: float,
                    beta: float) -> np.ndarray:
    """Training tokens a model of n parameters needs to reach `loss` (inf where it never can)."""
    room = loss - E - A * np.asarray(n, dtype=float) ** -alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(room > 0, (B / np.where(room > 0, room, 1.0)) ** (1.0 / beta), np.inf)


def plan(n: float, loss: float, inference_tokens: float, c: dict) -> Plan:
    d = float(tokens_for_loss(n, loss, **c))
    return Plan(n, d, 6.0 * n * d, 2.0 * n * inference_tokens)


def inference_optimal(loss: float, inference_tokens: float, c: dict) -> Plan:
    """The N (and D_train) reaching `loss` at the least training + inference FLOPs."""
    if loss <= c["E"]:
        raise UserError(f"target loss {loss}: at or below the fitted irreducible loss E = {c['E']:.4g}")
    if inference_tokens < 0:
        raise UserError(f"--inference-tokens {inference_tokens}: must not be negative")
    n_min = (c["A"] / (loss - c["E"])) ** (1.0 / c["alpha"])  # below this, no token count suffices

    def total(log_n: float) -> float:
        p = plan(math.exp(log_n), loss, inference_tokens, c)
        return math.log(p.total_flops) if math.isfinite(p.total_flops) else 1e300

    lo = math.log(n_min) + 1e-9
    res = minimize_scalar(total, bounds=(lo, lo + 40.0), method="bounded", options={"xatol": 1e-10})
    return plan(math.exp(res.x), loss, inference_tokens, c)


def chinchilla_optimal(compute: float, c: dict) -> tuple[float, float]:
    """Hoffmann et al.'s closed form for C = 6 N D: (N_opt, D_opt) (from `analysis.fits`)."""
    n, d = compute_optimal(c["A"], c["alpha"], c["B"], c["beta"], compute)
    return float(np.asarray(n).reshape(-1)[0]), float(np.asarray(d).reshape(-1)[0])


def compute_optimal_tokens(n: float, c: dict) -> float:
    """The training tokens for which n parameters is the compute-optimal size (inverse of the closed form)."""
    a = c["beta"] / (c["alpha"] + c["beta"])  # N_opt = g (C/6)^a, so C/6 = (n/g)^(1/a) and D = (C/6) / n
    g = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1.0 / (c["alpha"] + c["beta"]))
    return (n / g) ** (1.0 / a) / n


def compare(n_reference: float, d_reference: float, inference_tokens: float, c: dict) -> dict:
    """The reference model (N, D) against the inference-aware model of the same loss."""
    loss = loss_nd(n_reference, d_reference, **c)
    ref = Plan(n_reference, d_reference, 6.0 * n_reference * d_reference, 2.0 * n_reference * inference_tokens)
    best = inference_optimal(loss, inference_tokens, c)
    saved = ref.total_flops - best.total_flops
    return {"loss": loss, "reference": ref.to_dict(), "inference_optimal": best.to_dict(), "flops_saved": saved,
            "fraction_saved": saved / ref.total_flops}


def budget_table(budgets: list[float], inference_tokens: float, c: dict) -> list[dict]:
    """For each compute budget: the Chinchilla-optimal model and the inference-aware one of equal loss."""
    rows = []
    for budget in budgets:
        n, d = chinchilla_optimal(budget, c)
        cmp = compare(n, d, inference_tokens, c)
        best = cmp["inference_optimal"]
        rows.append({"C": budget, "loss": cmp["loss"], "N_chinchilla": n, "D_chinchilla": d,
                     "N_inference_optimal": best["params"], "D_inference_optimal": best["train_tokens"],
                     "flops_saved": cmp["flops_saved"], "fraction_saved": cmp["fraction_saved"]})
    return rows
