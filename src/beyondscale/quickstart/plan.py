"""How big the study is: ladder shapes, training tokens, corpus bytes and items per task.

The defaults fit `make run` (10 minutes on 2 CPU cores, install included). They are settings chosen
for that budget, not measurements. An explicit `--budget-minutes N` starts from them and grows the study
from costs measured on this machine at the start of the run (`budget.py` says the rule, `calibrate.py`
measures): more rungs first (up to `EXTRA_RUNGS`), then items, then tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beyondscale.errors import UserError
from beyondscale.lab.configs import Shape

__all__ = ["DEFAULT_BUDGET_MINUTES", "EXTRA_RUNGS", "StudyPlan", "plan_for"]

DEFAULT_BUDGET_MINUTES = 10.0
CONTEXT = 128  # the next-sentence task's longest continuation needs more than 64 tokens
# (d_model, n_layer, n_head): 25k to 430k parameters with the 1024-token vocabulary and tied embeddings
# (17x; the README's table gives each rung's measured count).
LADDER = ((16, 2, 2), (32, 2, 2), (64, 2, 4), (96, 3, 4))
# The rungs a budget adds, in order, after LADDER (about 2x parameters each: 0.92M and 1.7M). Appended only, so
# a plan with more rungs keeps every earlier rung's name and shape and reuses its training.
EXTRA_RUNGS = ((128, 4, 4), (160, 5, 5))
# Training-pool bytes per training token of the default plan (1 MB for 98,304 tokens); a plan with more tokens
# keeps this ratio so the rungs see new text rather than more passes over the same files.
DEFAULT_TOKENS, DEFAULT_POOL_BYTES = 98_304, 1_000_000
BYTES_PER_TOKEN = DEFAULT_POOL_BYTES / DEFAULT_TOKENS


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
    tokens: int = DEFAULT_TOKENS  # per rung: 96 steps of 8 x 128 tokens
    batch_size: int = 8
    lr: float = 3e-3
    vocab_size: int = 1024
    pool_bytes: int = DEFAULT_POOL_BYTES  # training pool (train + validation) taken from the corpus
    heldout_docs: int = 10  # held-out source documents for bits-per-byte
    qs_sizes: dict[str, int] = field(default_factory=lambda: {"qs_bpb": 8, "qs_nextsent": 24, "qs_pattern": 20})
    keep_fraction: float = 0.5  # the quality scorer keeps this share of what the rules let through
    probe_texts: int = 8  # held-out documents (their first lines) read through the logit lens
    # The real models' probes cost minutes on a CPU (their 49k/262k-token output layers at every layer of
    # the lens); the default budget probes the trained models only, 20 minutes and more add the real ones.
    probe_real_models: bool = False
    # An explicit --budget-minutes: the study measures its costs and grows this plan (`budget.py`) before training.
    budgeted: bool = False
    # How the planner split the minutes (a budget.BudgetSplit; None for the default plan). It describes the plan
    # and enters no resume key: the fields above say what runs.
    split: Any = None


def plan_for(budget_minutes: float | None = None, seed: int = 1234) -> StudyPlan:
    """The default plan, with the budget checked: an explicit budget is the floor the planner (`budget.py`) grows
    from costs measured at the start of the run."""
    minutes = DEFAULT_BUDGET_MINUTES if budget_minutes is None else float(budget_minutes)
    if not minutes >= DEFAULT_BUDGET_MINUTES:
        raise UserError(f"--budget-minutes {budget_minutes}: must be at least {DEFAULT_BUDGET_MINUTES:g} "
                        "(the smallest study that still fits a law to four rungs)")
    return StudyPlan(budget_minutes=minutes, seed=seed, budgeted=budget_minutes is not None)
