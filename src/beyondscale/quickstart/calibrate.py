"""What the study's parts cost on this machine, now: a short calibration at the start of a budgeted run.

`--budget-minutes N` sizes the study from these seconds (`budget.allocate`), not from typed-in ones:

- a training step of every candidate rung shape (and of the MoE) on random tokens, timed after one warm-up
  step, with the optimiser and loss the lab trains with;
- scoring CALIBRATION_ITEMS items of each task, through `evaluator.evaluate` into a throwaway store, by the
  real models and by a random-initialised model of the largest default rung's shape (every trained model is
  priced at its cost: the smaller rungs cost less, the added ones more, all of it small beside the real
  models); the real models' loading is the evaluation's wall time less the (model, task) pairs' own seconds.
  Two items per task carry each pair's fixed overhead, so this overstates an item's cost: the study corrects
  for it by evaluating the real models first and giving the tokens what the measured clock leaves.

What is not timed ahead is an estimate and is labelled so (`budget.Costs`): the stages after evaluation
(probes, analysis, report) and the corpus, curation and tokenizer per MB of training pool, both taken
from `make run`'s measured stage timings on 2 CPU cores (README), and the validation passes' share of training.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from beyondscale.lab.configs import Shape
from beyondscale.quickstart.budget import Costs
from beyondscale.quickstart.plan import CONTEXT, EXTRA_RUNGS, StudyPlan

__all__ = ["CALIBRATION_ITEMS", "measure_costs"]

CALIBRATION_ITEMS = 2  # items per task the calibration scores with every model (an upper bound per item: see budget)
WARM_ROUNDS, TIMED_ROUNDS = 3, 4  # training steps per shape: untimed (allocation, first kernels), then timed
# Estimates (labelled as such wherever they are shown): `make run`'s stage timings on 2 CPU cores (README:
# probes + analysis + report 2.5-12.5 s with 6 trained models; corpus + curation 8-12 s for 1 MB of pool).
AFTER_EVALUATION_ESTIMATE_S = 15.0
POOL_ESTIMATE_S_PER_MB = 12.0
# Validation passes (two on 4k tokens, the last over the whole validation set: a tenth of a pool of about three
# times the training tokens, forward only, about a third of a step's cost per batch): about 0.11 of training.
VALIDATION_SHARE = 0.11


def _stepper(shape: Shape, arch: str, plan: StudyPlan, device: str) -> Callable[[], None]:
    """One training step (batch_size x context tokens) of one shape on random tokens, as the lab trains it."""
    import torch
    from transformers import AutoModelForCausalLM

    from beyondscale.lab.configs import build_config
    from beyondscale.lab.moe import install_fast_moe
    from beyondscale.lab.train import TrainConfig, make_optimizer, objective

    cfg = TrainConfig(batch_size=plan.batch_size, lr=plan.lr, compile=False)
    model = AutoModelForCausalLM.from_config(build_config(arch, shape, plan.vocab_size, 0)).to(device)  # type: ignore[arg-type]
    blocks = install_fast_moe(model) if arch == "moe" else []
    optimizer = make_optimizer(model, cfg, device)
    loss_of = objective(model, cfg, blocks)
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, plan.vocab_size, (plan.batch_size, CONTEXT + 1)))
    x, y = ids[:, :-1].to(device), ids[:, 1:].to(device)
    model.train()

    def step() -> None:
        loss, _ = loss_of(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return step


def training_costs(plan: StudyPlan, device: str) -> tuple[tuple[float, ...], float]:
    """Step seconds of every candidate dense rung (the default ladder, then the rungs a budget may add) and of the
    MoE. The shapes take turns, one step each per round, so a burst of load from elsewhere on a shared machine
    lands on every shape alike; each shape's cost is its median over the timed rounds."""
    variant = plan.shapes[plan.variant_rung]
    moe = Shape(d_model=variant.d_model, n_layer=variant.n_layer, n_head=variant.n_head, context_length=CONTEXT,
                n_experts=plan.n_experts, top_k=plan.top_k)
    dense = [*plan.shapes, *(Shape(d_model=d, n_layer=n, n_head=h, context_length=CONTEXT) for d, n, h in EXTRA_RUNGS)]
    steps = [_stepper(s, "dense", plan, device) for s in dense] + [_stepper(moe, "moe", plan, device)]
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(WARM_ROUNDS + TIMED_ROUNDS):
        for step, kept in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            kept.append(time.perf_counter() - start)
    medians = [float(np.median(t[WARM_ROUNDS:])) for t in times]
    return tuple(medians[:-1]), medians[-1]


def _calibration_tasks(folder: Path, plan: StudyPlan, corpus: str | None) -> list[str]:
    from beyondscale.quickstart.build import build_quickstart_tasks
    from beyondscale.quickstart.source import bpb_task_rows, split_sources, write_bpb_task

    split = split_sources(0, plan.seed, corpus)  # the test split only: the pool is not needed here
    tasks = [write_bpb_task(folder, bpb_task_rows(split.test, CALIBRATION_ITEMS), split.source)]
    tasks += build_quickstart_tasks(folder, seed=plan.seed, sizes=dict.fromkeys(plan.qs_sizes, CALIBRATION_ITEMS))
    return [str(t) for t in tasks]


def _stand_in(folder: Path, plan: StudyPlan, texts: list[str]) -> str:
    """A random-initialised model of the largest default rung's shape, with a tokenizer of the study's size."""
    from transformers import AutoModelForCausalLM

    from beyondscale.lab.configs import build_config
    from beyondscale.lab.tokenizer import train_bpe

    tok = train_bpe(texts, plan.vocab_size)
    model = AutoModelForCausalLM.from_config(build_config("dense", plan.shapes[-1], len(tok), tok.eos_token_id))
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return f"stand-in={folder}"


def evaluation_costs(plan: StudyPlan, device: str, batch_size: int | str, real_models: dict[str, str],
                     corpus: str | None) -> tuple[dict[str, float], dict[str, float], float]:
    """(task -> seconds per item over the real models, task -> seconds per item of one trained model, the real
    models' loading in seconds), measured on CALIBRATION_ITEMS items of each task in a throwaway store."""
    from beyondscale.evaluator import EvalSettings, evaluate

    with tempfile.TemporaryDirectory(prefix="beyondscale-calibrate-") as tmp:
        root = Path(tmp)
        tasks = _calibration_tasks(root / "tasks", plan, corpus)
        texts = [line for t in tasks if t.endswith(".yaml") for line in Path(t).with_suffix(".jsonl").open()]
        stand_in = _stand_in(root / "stand-in", plan, texts)
        real_s, trained_s, pairs_s = {}, {}, 0.0
        start = time.perf_counter()
        for specs, into in ((list(real_models.values()), real_s), ([stand_in], trained_s)):
            if not specs:
                continue
            result = evaluate(specs, tasks, store=str(root / "calibration.db"), show_progress=False,
                              settings=EvalSettings(device=device, batch_size=batch_size), command="calibrate")
            for pair in result.results:
                into[pair.task] = into.get(pair.task, 0.0) + pair.seconds / max(pair.n_items, 1)
                pairs_s += pair.seconds
        loading = max(0.0, time.perf_counter() - start - pairs_s)
    return real_s, trained_s, loading


def measure_costs(plan: StudyPlan, device: str, batch_size: int | str, real_models: dict[str, str],
                  corpus: str | None, started: float) -> Costs:
    """Every cost the planner uses; `started` (time.perf_counter()) is when the study's clock began."""
    dense, moe = training_costs(plan, device)
    real, trained, loading = evaluation_costs(plan, device, batch_size, real_models, corpus)
    spent = time.perf_counter() - started
    return Costs(step_s=dense, moe_step_s=moe, real_item_s=real, trained_item_s=trained,
                 fixed_measured_s=spent + loading, fixed_estimate_s=AFTER_EVALUATION_ESTIMATE_S,
                 pool_s_per_mb=POOL_ESTIMATE_S_PER_MB, validation_share=VALIDATION_SHARE)
