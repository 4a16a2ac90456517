"""Training throughput: beyondscale's loop vs transformers' Trainer vs litgpt's pretraining loop (dense),
and beyondscale's MoE block vs transformers' own Mixtral experts (MoE), on the same tokens.

Each contender trains the same shape from the same initial weights on the same windows, for the same
number of tokens; after one warm-up run each, the contenders alternate for --rounds rounds. Steady-state
tokens/s is timed between optimiser steps (the first --skip steps excluded), by wrapping each
optimiser's `step`, so every framework is clocked the same way. Validation loss is the mean next-token
loss on the same held-out windows after equal tokens. MFU uses the lab's FLOP count (Kaplan) and the
machine's measured matmul peak.

    flock /tmp/beyondscale-bench.lock .venv/bin/python bench/train_throughput.py

litgpt is installed without its dependencies (`pip install --no-deps litgpt lightning jsonargparse
docstring_parser`): its pin huggingface-hub<1.4 would otherwise downgrade the hub client transformers needs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from beyondscale.lab.configs import Shape, build_config, neox_init
from beyondscale.lab.data import Batches, eval_windows
from beyondscale.lab.flops import training_flops
from beyondscale.lab.train import TrainConfig, lr_lambda, make_optimizer, train_steps


def corpus_tokens(vocab: int, n_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """English text read at run time from the installed Python standard library's docstrings."""
    import pkgutil
    import pydoc

    from beyondscale.lab.tokenizer import train_bpe

    texts, size = [], 0
    for mod in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if size > n_chars or mod.name.startswith("_") or mod.ispkg is None:
            continue
        try:
            module = pydoc.safeimport(mod.name)
        except BaseException:  # noqa: BLE001 - some modules refuse to import; skip them
            continue
        for obj in [module, *vars(module).values()] if module else []:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str) and len(doc) > 200 and doc not in texts:
                texts.append(doc)
                size += len(doc)
    tok = train_bpe(texts, vocab)
    ids = np.concatenate([np.asarray([*t, tok.eos_token_id]) for t in tok(texts)["input_ids"]]).astype(np.int64)
    n_val = len(ids) // 10
    return ids[:-n_val], ids[-n_val:]


class StepClock:
    """Wraps an optimiser's step() to record when each step ends."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.times: list[float] = []
        self.start = time.perf_counter()
        inner = optimizer.step

        def step(*a, **kw):
            out = inner(*a, **kw)
            self.times.append(time.perf_counter())
            return out

        optimizer.step = step

    def tokens_per_s(self, tokens_per_step: int, skip: int) -> float:
        t = self.times[skip - 1:]
        return (len(t) - 1) * tokens_per_step / (t[-1] - t[0])


def hf_model(config, init_state):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(init_state)
    return model


def run_ours(config, init, train_ids, steps, cfg, moe: bool):
    from beyondscale.lab.moe import install_fast_moe

    model = hf_model(config, init)
    blocks = install_fast_moe(model) if moe else []
    opt = make_optimizer(model, cfg, "cpu")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(max(1, steps // 20), steps, cfg.min_lr_ratio))
    clock = StepClock(opt)

    class Quiet:
        def micro(self, b):
            pass

        def step(self, s, p, lr):
            return False

    train_steps(model, cfg, Batches(train_ids, config.max_position_embeddings, cfg.batch_size, cfg.seed), steps,
                "cpu", Quiet(), blocks=blocks, optimizer=opt, scheduler=sched)
    return model, clock


def run_trainer(config, init, train_ids, steps, cfg, out: Path, compile_model: bool = False):
    """transformers' Trainer on the same windows (input = the first ctx tokens, labels shifted by HF);
    `compile_model` sets its own `torch_compile=True`."""
    from transformers import Trainer, TrainingArguments

    ctx = config.max_position_embeddings
    batches = Batches(train_ids, ctx, 1, cfg.seed)

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return steps * cfg.batch_size

        def __getitem__(self, i):
            x, y = batches.get(i)
            ids = torch.from_numpy(np.concatenate([x[0], y[0, -1:]])[:ctx])
            return {"input_ids": ids, "labels": ids}

    model = hf_model(config, init)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=cfg.batch_size, max_steps=steps, learning_rate=cfg.lr,
        warmup_steps=max(1, steps // 20), lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio}, weight_decay=cfg.weight_decay,
        adam_beta1=cfg.beta1, adam_beta2=cfg.beta2, max_grad_norm=cfg.clip, logging_steps=10**9, save_strategy="no",
        report_to="none", use_cpu=True, dataloader_num_workers=0, seed=cfg.seed, disable_tqdm=True,
        torch_compile=compile_model,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Windows())
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    clock = StepClock(trainer.optimizer)
    trainer.train()
    return model, clock


def litgpt_config(config):
    from litgpt.config import Config

    return Config(name="beyondscale-bench", block_size=config.max_position_embeddings, vocab_size=config.vocab_size,
                  padded_vocab_size=config.vocab_size, n_layer=config.num_hidden_layers,
                  n_head=config.num_attention_heads, n_embd=config.hidden_size, n_query_groups=config.num_key_value_heads,
                  rotary_percentage=1.0, parallel_residual=False, bias=False, norm_class_name="RMSNorm", norm_eps=1e-5,
                  mlp_class_name="LLaMAMLP", intermediate_size=config.intermediate_size, rope_base=10000)


def litgpt_from_hf(config, init) -> torch.nn.Module:
    """litgpt's GPT holding the same initial weights as the HF model (litgpt's own HF->litgpt converter),
    checked to compute the same logits, so every contender starts from one point."""
    from litgpt.model import GPT
    from litgpt.scripts.convert_hf_checkpoint import copy_weights_hf_llama
    from transformers import AutoModelForCausalLM

    model = GPT(litgpt_config(config))
    state: dict = {}
    copy_weights_hf_llama(model.config, {}, state, dict(init))
    model.load_state_dict(state)
    hf = AutoModelForCausalLM.from_config(config)
    hf.load_state_dict(init)
    ids = torch.randint(0, config.vocab_size, (2, config.max_position_embeddings), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gap = (model(ids) - hf(input_ids=ids).logits).abs().max().item()
    assert gap < 1e-4, f"litgpt conversion differs from the HF model by {gap}"
    return model


def run_litgpt(config, init, train_ids, steps, cfg, out: Path):
    """litgpt.pretrain.fit (its own loop: Fabric, chunked cross-entropy, clipping) on the same windows,
    with the model compiled as litgpt's `pretrain` setup always does (`torch.compile(model)`)."""
    import lightning as L
    from litgpt.args import EvalArgs, TrainArgs
    from litgpt.pretrain import fit

    ctx = config.max_position_embeddings
    fabric = L.Fabric(accelerator="cpu", devices=1, precision="32-true", loggers=[])
    model = fabric.setup(torch.compile(litgpt_from_hf(config, init)))
    opt = fabric.setup_optimizers(make_optimizer(model, cfg, "cpu"))
    clock = StepClock(opt)
    batches = Batches(train_ids, ctx, cfg.batch_size, cfg.seed)
    data = [torch.from_numpy(np.concatenate([x, y[:, -1:]], axis=1)) for x, y in map(batches.get, range(steps))]
    val = [data[0]]
    train = TrainArgs(max_tokens=steps * cfg.batch_size * ctx, micro_batch_size=cfg.batch_size,
                      global_batch_size=cfg.batch_size, log_interval=10**9, max_norm=cfg.clip,
                      lr_warmup_steps=max(1, steps // 20), min_lr=cfg.lr * cfg.min_lr_ratio, save_interval=None)
    state = {"model": model, "optimizer": opt, "iter_num": 0, "step_count": 0}
    fit(fabric, 1, state, data, val, out, None, train, EvalArgs(interval=10**9, max_iters=1, initial_validation=False,
                                                               final_validation=False))
    return model, clock


def val_loss(model, windows: np.ndarray) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(windows), 32):
            ids = torch.from_numpy(windows[start:start + 32])
            out = model(ids)
            logits = out if isinstance(out, torch.Tensor) else out.logits
            total += float(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                           reduction="sum"))
    return total / (len(windows) * (windows.shape[1] - 1))


OURS = "beyondscale (compiled: `train`'s choice from 1,000 steps)"


def contenders(kind: str):
    """The first name is the one every ratio divides by. Peers run as their users get them by default,
    plus the Trainer with its own `torch_compile=True` so the compiled loops are compared too."""
    if kind == "dense":
        return [OURS, "beyondscale (eager: runs under 1,000 steps)", "transformers Trainer",
                "transformers Trainer (torch_compile=True)", "litgpt pretrain (compiled, as its pretrain does)"]
    return [f"{OURS} MoE", "beyondscale MoE (eager)", "transformers Mixtral (eager per-expert loop)",
            "transformers Mixtral (grouped_mm)"]


def run_one(name: str, config, init, train_ids, steps, cfg, out: Path):
    import copy

    compiled = "(compiled" in name
    if name.startswith("beyondscale"):
        return run_ours(config, init, train_ids, steps, replace(cfg, compile=compiled), moe="MoE" in name)
    if name.startswith("transformers Trainer"):
        return run_trainer(config, init, train_ids, steps, cfg, out, compile_model="torch_compile" in name)
    if name.startswith("litgpt"):
        return run_litgpt(config, init, train_ids, steps, cfg, out)
    hf_config = copy.deepcopy(config)
    hf_config._experts_implementation = "eager" if "eager" in name else "grouped_mm"
    return run_ours(hf_config, init, train_ids, steps, cfg, moe=False)


def bench(kind: str, args, train_ids, val_ids, vocab: int, peak: float) -> dict:
    from transformers import AutoModelForCausalLM

    shape = Shape(d_model=args.d_model, n_layer=args.n_layer, n_head=args.n_head, context_length=args.ctx,
                  tie_embeddings=False)
    config = build_config(kind, shape, vocab, 0)
    torch.manual_seed(0)
    first = AutoModelForCausalLM.from_config(config)
    neox_init(first, 0)  # the lab's init (GPT-NeoX's, as litgpt's pretraining): ours and the Trainer share it
    init = first.state_dict()
    cfg = TrainConfig(batch_size=args.batch_size, aux_coef=0.01, z_coef=0.001)
    tokens_per_step = cfg.batch_size * args.ctx
    steps = args.tokens // tokens_per_step
    windows = eval_windows(val_ids, args.ctx, 32768)
    names = [n for n in contenders(kind) if not args.only or n == contenders(kind)[0]
             or any(word.lower() in n.lower() for word in args.only)]
    results: dict[str, dict] = {n: {"tokens_per_s": [], "val_loss": []} for n in names}
    for n in names:  # warm-up: allocator, kernels, imports, and every shape a compiled MoE recompiles for
        run_one(n, config, init, train_ids, max(args.skip + 3, args.warmup_steps), cfg, Path(args.scratch))
    for r in range(args.rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            model, clock = run_one(n, config, init, train_ids, steps, cfg, Path(args.scratch))
            results[n]["tokens_per_s"].append(clock.tokens_per_s(tokens_per_step, args.skip))
            results[n]["val_loss"].append(val_loss(model, windows))
            results[n].setdefault("first_step_s", []).append(clock.times[0] - clock.start)
            print(f"round {r} {n}: {results[n]['tokens_per_s'][-1]:,.0f} tok/s, val {results[n]['val_loss'][-1]:.4f}",
                  flush=True)
    flops_per_token = training_flops(config, 1, args.ctx)
    ours = statistics.median(results[names[0]]["tokens_per_s"])
    for n in names:
        tps = statistics.median(results[n]["tokens_per_s"])
        results[n].update(median_tokens_per_s=tps, mfu=tps * flops_per_token / peak, ours_over_this=ours / tps,
                          median_val_loss=statistics.median(results[n]["val_loss"]))
    return {"shape": shape.to_dict(), "tokens": steps * tokens_per_step, "steps": steps, "results": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=160_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--skip", type=int, default=3, help="steps excluded from the steady-state clock")
    p.add_argument("--warmup-steps", type=int, default=30, help="steps of each contender's untimed warm-up run")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--kind", choices=["dense", "moe", "both"], default="both")
    p.add_argument("--scratch", default="/tmp/beyondscale-train-bench")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every contender")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--only", action="append", help="run only contenders whose name contains this (repeatable; "
                   "the first contender, every ratio's numerator, always runs)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from beyondscale.measure import peak_flops

    train_ids, val_ids = corpus_tokens(args.vocab, 3_000_000)
    peak = peak_flops("cpu", "float32")
    doc = {"torch_threads": torch.get_num_threads(), "peak_flops": peak.to_dict(), "load_average": os.getloadavg(),
           "train_tokens_available": len(train_ids)}
    for kind in (["dense", "moe"] if args.kind == "both" else [args.kind]):
        doc[kind] = bench(kind, args, train_ids, val_ids, args.vocab, peak.value)
        for n, r in doc[kind]["results"].items():
            print(f"{kind:5} {n:45} {r['median_tokens_per_s']:9,.0f} tok/s  MFU {r['mfu']:6.2%}  "
                  f"val {r['median_val_loss']:.4f}  beyondscale/this {r['ours_over_this']:.2f}x")
    doc["load_average_end"] = os.getloadavg()
    print(f"load average start {doc['load_average']}, end {doc['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))


if __name__ == "__main__":
    main()
