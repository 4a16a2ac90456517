"""How big the study is: ladder shapes, training tokens, corpus bytes and items per task, from a budget.

The defaults fit `make run` (10 minutes on 2 CPU cores, install included). They are settings chosen
for that budget, not measurements; `--budget-minutes` scales the parts whose cost grows with them
(training tokens, corpus bytes, evaluation items) in proportion to the minutes left after the fixed
costs, so 30 minutes trains each rung on about four times the tokens and evaluates on more items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beyondscale.errors import UserError
from beyondscale.lab.configs import Shape

__all__ = ["DEFAULT_BUDGET_MINUTES", "StudyPlan", "plan_for"]

DEFAULT_BUDGET_MINUTES = 10.0
# Minutes of the default budget that do not grow with the study: install (measured ~2 min with a warm
# pip cache), interpreter and library imports, loading the two real models (an estimate, see README).
FIXED_MINUTES = 4.0
CONTEXT = 128  # the next-sentence task's longest continuation needs more than 64 tokens
# (d_model, n_layer, n_head): 25k to 430k parameters with the 1024-token vocabulary and tied embeddings
# (17x; the README's table gives each rung's measured count).
LADDER = ((16, 2, 2), (32, 2, 2), (64, 2, 4), (96, 3, 4))


@dataclass
class StudyPlan:
    """Everything that sizes the study (each field enters a resume key somewhere, so a change retrains)."""

    budget_minutes: float = DEFAULT_BUDGET_MINUTES
    seed: int = 1234
    shapes: list[Shape] = field(default_factory=lambda: [
        Shape(d_model=d, n_layer=n, n_head=h, context_length=CONTEXT) for d, n, h in LADDER])
    variant_rung: int = 1  # the MoE and the curated arm sit at this dense rung
    n_experts: int = 8
    top_k: int = 2
    tokens: int = 98_304  # per rung: 96 steps of 8 x 128 tokens
    batch_size: int = 8
    lr: float = 3e-3
    vocab_size: int = 1024
    pool_bytes: int = 1_000_000  # training pool (train + validation) taken from the corpus
    heldout_docs: int = 10  # held-out source documents for bits-per-byte
    qs_sizes: dict[str, int] = field(default_factory=lambda: {"qs_bpb": 8, "qs_nextsent": 24, "qs_pattern": 20})
    keep_fraction: float = 0.5  # the quality scorer keeps this share of what the rules let through
    probe_texts: int = 8  # held-out documents (their first lines) read through the logit lens
    # The real models' probes cost minutes on a CPU (their 49k/262k-token output layers at every layer of
    # the lens); the default budget probes the trained models only, 20 minutes and more add the real ones.
    probe_real_models: bool = False

    def scale(self) -> float:
        return max(1.0, (self.budget_minutes - FIXED_MINUTES) / (DEFAULT_BUDGET_MINUTES - FIXED_MINUTES))


def plan_for(budget_minutes: float | None = None, seed: int = 1234) -> StudyPlan:
    """The default plan, grown for a larger budget (never shrunk: the default is already the floor)."""
    minutes = DEFAULT_BUDGET_MINUTES if budget_minutes is None else float(budget_minutes)
    if not minutes >= DEFAULT_BUDGET_MINUTES:
        raise UserError(f"--budget-minutes {budget_minutes}: must be at least {DEFAULT_BUDGET_MINUTES:g} "
                        "(the smallest study that still fits a law to four rungs)")
    plan = StudyPlan(budget_minutes=minutes, seed=seed)
    k = plan.scale()
    step = plan.batch_size * CONTEXT
    plan.tokens = int(plan.tokens * k) // step * step
    plan.pool_bytes = int(plan.pool_bytes * k)
    plan.heldout_docs = int(plan.heldout_docs * k)
    plan.qs_sizes = {name: int(n * k) for name, n in plan.qs_sizes.items()}
    plan.probe_real_models = minutes >= 20
    return plan
