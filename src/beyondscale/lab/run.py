"""`beyondscale train` end to end: check the inputs, prepare tokens, train, save an HF folder, record.

Every user mistake is found before the output folder is touched; a folder holding another run is
refused unless `resume` (continue its checkpoint) or `overwrite` (replace it) is asked for.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from beyondscale.errors import UserError
from beyondscale.lab import checkpoint
from beyondscale.lab.configs import Shape, build_config, neox_init, validate
from beyondscale.lab.data import Batches, TokenSplits, check_sizes, read_corpus, tokenize
from beyondscale.lab.progress import TrainHooks
from beyondscale.lab.record import read_folder_record
from beyondscale.lab.train import TrainConfig, lr_lambda, make_optimizer, train_steps, use_compile
from beyondscale.models.ref import LAB_MARKER
from beyondscale.store.training import TrainingRecord

LAB_DIR = "lab"  # inside the output folder: token arrays, the request and the checkpoint
OWN_FILES = ("config.json", "generation_config.json", "model.safetensors", "README.md", LAB_MARKER,
             "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
DEFAULT_TOKENS = 600_000


@dataclass
class TrainRequest:
    data: str
    out: str
    arch: str = "dense"
    tokens: int | None = None  # default DEFAULT_TOKENS
    shape: Shape = field(default_factory=Shape)
    train: TrainConfig = field(default_factory=TrainConfig)
    vocab_size: int = 2048
    tokenizer: str | None = None
    val_fraction: float = 0.1
    val_data: str | None = None  # a shared validation corpus (then all of `data` trains)
    distill_from: str | None = None
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    store: str | None = None
    show_progress: bool = True
    stop_after: int | None = None  # stop (as if killed) after this many steps; for tests and demos

    def settings(self) -> dict[str, Any]:
        """What must match for --resume to continue a run (not where it is written or how it is shown)."""
        d = asdict(self)
        for k in ("out", "resume", "overwrite", "store", "show_progress", "stop_after", "device"):
            d.pop(k)
        return json.loads(json.dumps(d, default=str))


def _check_numbers(req: TrainRequest) -> None:
    t = req.train
    if req.tokens is not None and req.tokens < 1:
        raise UserError(f"--tokens {req.tokens}: must be positive")
    for flag, value in (("--batch-size", t.batch_size), ("--grad-accum", t.grad_accum)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be positive")
    if not t.lr > 0 or not 0 <= t.min_lr_ratio <= 1:
        raise UserError("--lr must be positive and --min-lr-ratio within [0, 1]")
    if t.aux_coef < 0 or t.z_coef < 0:
        raise UserError("--aux-coef and --z-coef must not be negative")
    if not 0 <= t.distill_alpha <= 1 or not t.distill_temperature > 0:
        raise UserError("--distill-alpha must be within [0, 1] and --distill-temperature positive")
    if not 0 < req.val_fraction < 1:
        raise UserError(f"--val-fraction {req.val_fraction}: must be between 0 and 1")
    if req.resume and req.overwrite:
        raise UserError("--resume and --overwrite: pick one")


def folder_state(out: Path) -> str:
    """'empty' (absent or empty), 'finished', 'checkpoint' (an unfinished lab run) or 'other'."""
    if not out.exists():
        return "empty"
    if not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if (out / LAB_MARKER).is_file():
        return "finished"
    if (out / LAB_DIR / checkpoint.NAME).is_file():
        return "checkpoint"
    return "other" if any(out.iterdir()) else "empty"


def _check_out(req: TrainRequest, out: Path) -> str:
    state = folder_state(out)
    if state == "empty" or req.overwrite:
        return state
    if not req.resume:
        raise UserError(f"--out {out}: folder holds another run or other files; pass --resume to continue "
                        "that run or --overwrite to replace it")
    if state == "other":
        raise UserError(f"--out {out}: --resume found no beyondscale checkpoint there")
    saved = json.loads((out / LAB_DIR / "request.json").read_text(encoding="utf-8"))
    for name, value in req.settings().items():
        if saved.get(name) != value:
            raise UserError(f"--resume {out}: setting '{name}' differs from the run being resumed "
                            f"({saved.get(name)!r} there, {value!r} now)")
    return state


def _clear(out: Path) -> None:
    """--overwrite: remove only what a lab run writes, and nothing at all if the folder holds anything else."""
    leftovers = sorted(p.name for p in out.iterdir() if p.name not in (*OWN_FILES, LAB_DIR))
    if leftovers:
        raise UserError(f"--out {out}: --overwrite only replaces a lab run's files; the folder also holds "
                        f"{', '.join(leftovers[:3])}")
    shutil.rmtree(out / LAB_DIR, ignore_errors=True)
    for name in OWN_FILES:
        (out / name).unlink(missing_ok=True)


def _check_same_data(req: TrainRequest, out: Path) -> None:
    """--resume continues a run only on the very corpus it started with (content, not just the path)."""
    saved = json.loads((out / LAB_DIR / "data.json").read_text(encoding="utf-8"))
    now = read_corpus(req.data).data_hash
    if saved.get("data_hash") != now:
        raise UserError(f"--resume {out}: --data {req.data} changed since that run started (hash {now}, "
                        f"run trained on {saved.get('data_hash')}); train into a new --out")


def _tokenizer_for(req: TrainRequest, texts: list[str]) -> Any:
    from beyondscale.lab.tokenizer import load_tokenizer, train_bpe

    spec = req.tokenizer or req.distill_from
    return load_tokenizer(spec) if spec else train_bpe(texts, req.vocab_size)


def _prepare(req: TrainRequest, out: Path) -> tuple[Any, TokenSplits, dict]:
    """Corpus -> tokenizer + token arrays in a scratch folder, checked before `out` is touched."""
    corpus = read_corpus(req.data)
    val_corpus = read_corpus(req.val_data) if req.val_data else None
    tok = _tokenizer_for(req, corpus.texts)
    scratch = Path(tempfile.mkdtemp(prefix="beyondscale-lab-"))
    splits = tokenize(corpus, tok, scratch, req.val_fraction, val_corpus)
    check_sizes(splits, req.shape.context_length, req.data)
    data = {"source": corpus.source, "variant": corpus.variant, "data_hash": corpus.data_hash,
            "recipe": corpus.recipe, "documents": len(corpus.texts), "train_tokens_available": splits.n_train,
            "val_token_count": splits.n_val, "val_source": val_corpus.source if val_corpus else "split",
            "val_data_hash": val_corpus.data_hash if val_corpus else None}
    return tok, splits, data


def steps_for(req: TrainRequest) -> int:
    per_step = req.train.batch_size * req.train.grad_accum * req.shape.context_length
    tokens = req.tokens or DEFAULT_TOKENS
    if tokens < per_step:
        raise UserError(f"--tokens {tokens}: budget too small for one step (one step takes {per_step} tokens = "
                        "--batch-size x --grad-accum x --context-length)")
    return tokens // per_step


def _setup_folder(req: TrainRequest, out: Path, tok: Any, splits: TokenSplits, data: dict) -> TokenSplits:
    if req.overwrite and out.exists():
        _clear(out)
    lab = out / LAB_DIR
    lab.mkdir(parents=True, exist_ok=True)
    train_path, val_path = lab / "train_tokens.npy", lab / "val_tokens.npy"
    shutil.move(splits.train_path, train_path)
    shutil.move(splits.val_path, val_path)
    shutil.rmtree(splits.train_path.parent, ignore_errors=True)
    tok.save_pretrained(str(out))
    (lab / "request.json").write_text(json.dumps(req.settings(), indent=1), encoding="utf-8")
    (lab / "data.json").write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return TokenSplits(train_path, val_path, splits.n_train, splits.n_val)


def _resume_folder(out: Path) -> tuple[Any, TokenSplits, dict]:
    from beyondscale.lab.tokenizer import load_tokenizer

    lab = out / LAB_DIR
    data = json.loads((lab / "data.json").read_text(encoding="utf-8"))
    splits = TokenSplits(lab / "train_tokens.npy", lab / "val_tokens.npy", data["train_tokens_available"],
                         data["val_token_count"])
    return load_tokenizer(str(out)), splits, data


def _build_model(req: TrainRequest, tok: Any, device: str) -> tuple[torch.nn.Module, list]:
    from transformers import AutoModelForCausalLM

    from beyondscale.lab.moe import install_fast_moe

    config = build_config(req.arch, req.shape, len(tok), tok.eos_token_id, aux_coef=req.train.aux_coef)
    torch.manual_seed(req.train.seed)
    model = AutoModelForCausalLM.from_config(config)
    neox_init(model, req.train.seed)
    model = model.to(device)
    blocks = install_fast_moe(model) if req.arch == "moe" else []
    return model, blocks


def _load_teacher(req: TrainRequest, tok: Any, device: str) -> torch.nn.Module | None:
    if not req.distill_from:
        return None
    from transformers import AutoModelForCausalLM

    from beyondscale.lab.moe import install_fast_moe

    try:
        teacher = AutoModelForCausalLM.from_pretrained(req.distill_from, trust_remote_code=False, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise UserError(f"--distill-from {req.distill_from}: cannot load a causal LM ({err})") from None
    if teacher.config.vocab_size != len(tok):
        raise UserError(f"--distill-from {req.distill_from}: vocabulary {teacher.config.vocab_size} differs from "
                        f"the student's tokenizer ({len(tok)}); distil with the teacher's tokenizer")
    if getattr(teacher.config, "num_local_experts", None):
        install_fast_moe(teacher)
    return teacher.to(device).eval().requires_grad_(False)


def train_model(req: TrainRequest) -> TrainingRecord | None:
    """Train one model into `req.out`; returns its record (None when `stop_after` stopped it early)."""
    from beyondscale.models.load import resolve_device

    validate(req.arch, req.shape)
    _check_numbers(req)
    steps = steps_for(req)
    device = resolve_device(req.device)
    out = Path(req.out).expanduser().resolve()
    state = _check_out(req, out)
    if req.resume and state in ("finished", "checkpoint"):
        _check_same_data(req, out)
    if req.resume and state == "finished":
        return read_folder_record(out)
    if req.resume and state == "checkpoint":
        tok, splits, data = _resume_folder(out)
    else:
        tok, splits, data = _prepare(req, out)
        splits = _setup_folder(req, out, tok, splits, data)
    model, blocks = _build_model(req, tok, device)
    teacher = _load_teacher(req, tok, device)
    return _train_and_save(req, out, steps, device, model, blocks, teacher, tok, splits, data)


def _train_and_save(req: TrainRequest, out: Path, steps: int, device: str, model: torch.nn.Module, blocks: list,
                    teacher: Any, tok: Any, splits: TokenSplits, data: dict) -> TrainingRecord | None:
    from beyondscale import measure
    from beyondscale.lab.data import eval_windows
    from beyondscale.lab.losses import windows_loss

    cfg, ctx = req.train, req.shape.context_length
    optimizer = make_optimizer(model, cfg, device)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, steps, cfg.min_lr_ratio))
    ckpt_path = out / LAB_DIR / checkpoint.NAME
    saved = checkpoint.load(ckpt_path) if ckpt_path.is_file() else None
    start = checkpoint.restore(saved, model=model, optimizer=optimizer, scheduler=scheduler) if saved else 0
    quick_windows = eval_windows(splits.val(), ctx, cfg.eval_tokens)
    peak = measure.peak_flops(device, "bfloat16" if device.startswith("cuda") else "float32")

    def save(step: int) -> None:
        checkpoint.save(ckpt_path, model=model, optimizer=optimizer, scheduler=scheduler, step=step,
                        extra=hooks.state(step))

    hooks = TrainHooks(
        config=model.config, steps=steps, tokens_per_step=cfg.batch_size * cfg.grad_accum * ctx, context_length=ctx,
        n_layers_moe=len(blocks), n_experts=getattr(model.config, "num_local_experts", 0) or 0,
        teacher_config=teacher.config if teacher is not None else None,
        evaluate=lambda: windows_loss(model, quick_windows, device), eval_every=cfg.eval_every or max(1, steps // 10),
        save=save, peak_flops=peak.value, show=req.show_progress, stop_after=req.stop_after,
        state=saved["extra"] if saved else None,
    )
    meter = measure.Meter(device=device)
    batches = Batches(splits.train(), ctx, cfg.batch_size, cfg.seed)
    m = meter.measure()
    try:
        with m:
            train_steps(model, replace(cfg, compile=use_compile(cfg.compile, steps, device)), batches, steps,
                        device, hooks, blocks=blocks, teacher=teacher, optimizer=optimizer, scheduler=scheduler,
                        start=start)
    except KeyboardInterrupt:
        save(hooks.last_step)
        raise
    finally:
        hooks.close()
        if m.result is not None:
            _append_segment(out, m.result)
    if hooks.stopped_early:
        return None
    return _finish(req, out, model, tok, splits, data, hooks, peak, device)


def _append_segment(out: Path, result: Any) -> None:
    """Wall time and energy of each training segment (a resumed run has several)."""
    path = out / LAB_DIR / "segments.json"
    segments = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    segments.append({"wall_s": result.wall_s, "energy_j": result.energy_j, "energy_source": result.energy_source,
                     "energy_estimated": result.energy_estimated, "hardware": result.hardware})
    path.write_text(json.dumps(segments, indent=1), encoding="utf-8")


def _finish(req: TrainRequest, out: Path, model: torch.nn.Module, tok: Any, splits: TokenSplits, data: dict,
            hooks: TrainHooks, peak: Any, device: str) -> TrainingRecord:
    """Final evaluation, the HF folder, the record (JSON beside the weights, and the store)."""
    from beyondscale.lab.data import eval_windows, spread_windows
    from beyondscale.lab.flops import param_counts
    from beyondscale.lab.losses import windows_loss
    from beyondscale.lab.moe import load_summary
    from beyondscale.lab.record import store_record, write_folder_record

    ctx, steps = req.shape.context_length, hooks.steps
    val_windows = eval_windows(splits.val(), ctx)
    val_loss = windows_loss(model, val_windows, device)
    train_loss = windows_loss(model, spread_windows(splits.train(), ctx, len(val_windows)), device)
    hooks.val_curve.append({"step": steps, "tokens": steps * hooks.tokens_per_step, "flops": hooks.flops,
                            "loss": val_loss, "lr": None})
    model.generation_config.pad_token_id = tok.eos_token_id
    model.save_pretrained(str(out), safe_serialization=True)
    segments = json.loads((out / LAB_DIR / "segments.json").read_text(encoding="utf-8"))
    wall = sum(s["wall_s"] for s in segments)
    energy = sum(s["energy_j"] or 0.0 for s in segments)
    sources = sorted({s["energy_source"] for s in segments})
    moe = [load_summary(c) for c in hooks.counts] if req.arch == "moe" else None
    record = TrainingRecord(
        out=str(out), arch=req.arch, architecture=model.config.architectures[0],
        **param_counts(model), tokens=steps * hooks.tokens_per_step, steps=steps, train_flops=hooks.flops,
        flops_convention="Kaplan: 3 x forward (2 per weight MAC + 2*n_layer*ctx*d_attn); experts counted "
                         "per routed token; teacher forward passes included",
        context_length=ctx, val_loss=val_loss, val_tokens=str(splits.val_path),
        val_token_count=int(val_windows.size), train_loss=train_loss,
        train_loss_sample="as many windows as validation, evenly spaced over the training tokens",
        generalisation_gap=val_loss - train_loss, wall_s=wall, energy_j=energy,
        energy_source="+".join(sources), energy_estimated=any(s["energy_estimated"] for s in segments),
        segments=len(segments), device=device, hardware=segments[-1]["hardware"],
        tokens_per_s=steps * hooks.tokens_per_step / wall if wall else None,
        mfu=hooks.flops / wall / peak.value if wall and peak.value else None, peak_flops_source=peak.source,
        expert_load=[m["load"] for m in moe] if moe else None, moe_layers=moe,
        distill={"teacher": req.distill_from, "teacher_flops": hooks.teacher_flops,
                 "alpha": req.train.distill_alpha, "temperature": req.train.distill_temperature}
        if req.distill_from else None,
        data=data, shape=req.shape.to_dict(), train_config=req.train.to_dict(), seed=req.train.seed,
        compiled=use_compile(req.train.compile, steps, device),
        loss_curve=hooks.loss_curve, val_curve=hooks.val_curve,
    )
    write_folder_record(out, record)
    (out / LAB_DIR / checkpoint.NAME).unlink(missing_ok=True)
    if req.store:
        record = replace(record, model_key=store_record(req.store, out, record))
    return record
