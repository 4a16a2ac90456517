"""`beyondscale sweep`: dense ladder, MoE at a dense rung's active size, raw vs curated data at equal
tokens, and a distilled small rung beside the same rung from scratch; then what each alternative is
worth in dense compute, memorisation and the generalisation gap per rung.

Several token budgets (`Preset.more_tokens`, `--tokens` repeated) train every dense rung at each of
them, so the ladder varies both N and D and `analysis.ladder` can fit L(N, D); the alternatives stay at
the main (first) budget, matched with the dense rung of that budget.

Every run validates on one shared held-out set (a seeded random 10% of the raw documents, removed from
both training corpora), so losses are comparable across data variants, and uses one tokenizer trained on the raw
training documents. Each finished model is evaluated through `evaluator.evaluate` (the same unit of work as
`eval`) on a rolling log-likelihood task over those held-out documents, plus any `tasks` given.
Re-running a sweep resumes: finished runs are read back, unfinished ones continue from checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.lab.configs import Shape
from beyondscale.lab.data import Corpus, read_corpus
from beyondscale.lab.train import TrainConfig
from beyondscale.store import DEFAULT_STORE
from beyondscale.store.training import TrainingRecord


@dataclass
class Preset:
    """A ladder: dense shapes, the rung the MoE / curated / distilled variants sit at, budgets."""

    dense: list[Shape]
    tokens: int
    vocab_size: int
    batch_size: int
    lr: float
    variant_rung: int = 1
    n_experts: int = 8
    top_k: int = 2
    eval_limit: int | None = 40
    memorisation_samples: int = 64
    note: str = ""
    train: dict = field(default_factory=dict)
    more_tokens: tuple[int, ...] = ()  # further budgets for the dense rungs (the alternatives stay at `tokens`)

    @property
    def budgets(self) -> list[int]:
        return [self.tokens, *self.more_tokens]


PRESETS = {
    # minutes on 2 CPU cores (measured: see the lab notes); models of 30k-300k parameters
    "cpu": Preset(dense=[Shape(d_model=d, n_layer=n, n_head=h, context_length=64) for d, n, h in
                         ((32, 2, 2), (48, 2, 2), (64, 3, 4), (96, 3, 4), (128, 4, 4))],
                  tokens=160_000, vocab_size=1024, batch_size=16, lr=3e-3, note="CPU smoke ladder"),
    # a single GPU, hours (shapes chosen by the GPT-style width/depth ratios; not run in this repository's CI)
    "gpu": Preset(dense=[Shape(d_model=d, n_layer=n, n_head=h, context_length=1024) for d, n, h in
                         ((256, 6, 4), (384, 8, 6), (512, 10, 8), (768, 12, 12), (1024, 16, 16))],
                  tokens=2_000_000_000, vocab_size=32768, batch_size=32, lr=1e-3, eval_limit=None,
                  memorisation_samples=1000, note="single-GPU ladder (estimate: hours; untested here)"),
}


@dataclass
class Rung:
    name: str
    kind: str  # dense | moe | curated | distilled
    arch: str
    shape: Shape
    data: str  # raw | curated
    teacher: str | None = None
    matched_dense: str | None = None  # the dense rung this alternative is compared with
    tokens: int | None = None  # training budget; None: the preset's main budget


def budget_label(tokens: int, budgets: list[int]) -> str:
    """'160k', '2B': three significant digits, or the exact count where that would repeat another budget's."""
    from beyondscale.analysis.wording import n_params as short

    return short(tokens) if len({short(b) for b in budgets}) == len(budgets) else str(tokens)


def _dense_rungs(preset: Preset) -> list[Rung]:
    """Every dense shape at every budget; names carry the budget only when there are several."""
    budgets = preset.budgets
    return [Rung(f"dense-{i}-d{s.d_model}" + (f"-{budget_label(t, budgets)}" if len(budgets) > 1 else ""),
                 "dense", "dense", s, "raw", tokens=t) for t in budgets for i, s in enumerate(preset.dense)]


def plan_rungs(preset: Preset, has_curated: bool) -> list[Rung]:
    """Dense rungs (at every budget), then the MoE, curated and distilled alternatives at the main budget."""
    every_dense = _dense_rungs(preset)
    dense = every_dense[:len(preset.dense)]  # the main budget's rungs, which the alternatives match
    base = dense[preset.variant_rung]
    # experts 1/top_k as wide as the dense MLP: the top_k active experts together match the rung's active size
    moe_shape = replace(base.shape, n_experts=preset.n_experts, top_k=preset.top_k,
                        d_ff=max(1, base.shape.ffn // preset.top_k))
    rungs = [*every_dense, Rung(f"moe-{preset.n_experts}x{preset.top_k}-d{base.shape.d_model}", "moe", "moe", moe_shape,
                          "raw", matched_dense=base.name)]
    if has_curated:
        rungs.append(Rung(f"curated-d{base.shape.d_model}", "curated", "dense", base.shape, "curated",
                          matched_dense=base.name))
    small = dense[0]
    rungs.append(Rung(f"distilled-d{small.shape.d_model}", "distilled", "dense", small.shape, "raw",
                      teacher=dense[-1].name, matched_dense=small.name))
    return rungs


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_jsonl(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")


def _doc_keys(corpus: Corpus) -> list[set[str]]:
    """Document identity across curation (which may edit text): its JSONL id when given, its exact text and
    its text with whitespace collapsed (curation that drops whole lines still escapes these keys)."""
    return [{_hash(t), "ws:" + _hash(" ".join(t.split())), *([f"id:{i}"] if i is not None else [])}
            for t, i in zip(corpus.texts, corpus.ids, strict=True)]


def prepare_data(raw: Corpus, curated: Corpus | None, folder: Path) -> dict[str, Path]:
    """Shared validation docs (a seeded random 10% of the raw documents, so a corpus ordered by kind is sampled
    fairly) held out of both training corpora, by id and by text (exact copies under other ids leave too)."""
    keys = _doc_keys(raw)
    picked = set(random.Random(0).sample(range(len(raw.texts)), max(1, len(raw.texts) // 10)))
    val = [t for i, t in enumerate(raw.texts) if i in picked]
    val_keys = [k for i, k in enumerate(keys) if i in picked]
    held = set().union(*val_keys)
    raw_train = [t for i, (t, k) in enumerate(zip(raw.texts, keys, strict=True)) if i not in picked and not k & held]
    paths = {"val": folder / "val.jsonl", "raw": folder / "raw_train.jsonl"}
    _write_jsonl(paths["val"], val)
    _write_jsonl(paths["raw"], raw_train)
    if curated is not None:
        cur_keys = _doc_keys(curated)
        kept_keys = set().union(*cur_keys)
        paths["val_clean"] = folder / "val_clean.jsonl"  # held-out documents the curation keeps (raw text)
        _write_jsonl(paths["val_clean"], [t for t, k in zip(val, val_keys, strict=True) if k & kept_keys])
        kept = [t for t, k in zip(curated.texts, cur_keys, strict=True) if not k & held]
        cur = folder / "curated"
        _write_jsonl(cur / "kept" / "train.jsonl", kept)
        h = hashlib.sha256("".join(_hash(t) for t in kept).encode()).hexdigest()[:24]
        (cur / "summary.json").write_text(json.dumps({"data_hash": h, "recipe": curated.recipe,
                                                      "derived_from": curated.data_hash,
                                                      "held_out_removed": len(curated.texts) - len(kept)}))
        paths["curated"] = cur
    (folder / "heldout_ppl.yaml").write_text(
        "task: heldout_ppl\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: val.jsonl\n"
        "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\n",
        encoding="utf-8")
    paths["task"] = folder / "heldout_ppl.yaml"
    return paths


def check_inputs(preset: str, data: str, curated: str | None) -> tuple[Preset, Corpus, Corpus | None]:
    if preset not in PRESETS:
        raise UserError(f"--preset {preset}: expected one of {', '.join(PRESETS)}")
    raw = read_corpus(data)
    if len(raw.texts) < 20:
        raise UserError(f"--data {data}: {len(raw.texts)} documents; a sweep holds out 10% of them, so it needs 20+")
    cur = read_corpus(curated) if curated else None
    return PRESETS[preset], raw, cur


def with_budgets(p: Preset, tokens: int | list[int] | None) -> Preset:
    """The preset at the budgets asked for (the first is the main one); one clear line for a bad list."""
    if tokens is None:
        return p
    budgets = [tokens] if isinstance(tokens, int) else list(tokens)
    if not budgets:
        return p
    per_step = p.batch_size * int(p.train.get("grad_accum", 1)) * p.dense[0].context_length
    for t in budgets:
        if t < per_step:
            raise UserError(f"--tokens {t}: budget too small for one step ({per_step} tokens)")
    steps = [t // per_step for t in budgets]
    if len(set(steps)) < len(steps):
        raise UserError(f"--tokens {' '.join(map(str, budgets))}: two budgets round to the same number of "
                        f"steps ({per_step} tokens each); give budgets that differ by at least one step")
    return replace(p, tokens=budgets[0], more_tokens=tuple(budgets[1:]))


def train_rungs(p: Preset, rungs: list[Rung], paths: dict[str, Path], out: Path, *, store: str | None,
                device: str, show_progress: bool, executor: Any = None) -> dict[str, TrainingRecord]:
    from beyondscale.lab.run import TrainRequest, train_model
    from beyondscale.lab.tokenizer import train_bpe

    tok_dir = out / "tokenizer"
    if not (tok_dir / "tokenizer.json").is_file():
        train_bpe(read_corpus(paths["raw"]).texts, p.vocab_size).save_pretrained(str(tok_dir))
    records, requests = {}, {}
    for rung in rungs:
        req = TrainRequest(
            data=str(paths[rung.data]), out=str(out / "runs" / rung.name), arch=rung.arch,
            tokens=rung.tokens or p.tokens,
            shape=rung.shape, train=TrainConfig(batch_size=p.batch_size, lr=p.lr, **p.train),
            tokenizer=str(tok_dir), val_data=str(paths["val"]),
            distill_from=str(out / "runs" / rung.teacher) if rung.teacher else None, device=device, resume=True,
            store=store, show_progress=show_progress)
        requests[rung.name] = req
    if executor is not None:  # runs in parallel (Ray), the store written by this process alone
        from beyondscale.lab.train_jobs import train_all

        return train_all(requests, {r.name: r.teacher for r in rungs}, executor, store)
    for name, req in requests.items():
        records[name] = train_model(req)
    return records


def evaluate_rungs(records: dict[str, TrainingRecord], tasks: list[str], store: str, p: Preset, device: str,
                   show_progress: bool, executor: Any = None) -> dict[str, dict]:
    """Every model through `evaluator.evaluate` (stored, resumable), metrics collected per model name."""
    from beyondscale.evaluator import EvalSettings, evaluate

    result = evaluate([f"{name}={r['out']}" for name, r in records.items()], tasks, store=store,
                      settings=EvalSettings(limit=p.eval_limit, device=device),
                      show_progress=show_progress, command="sweep", executor=executor)
    result.raise_failures("sweep")
    metrics: dict[str, dict] = {name: {} for name in records}
    for pair in result.results:
        metrics[pair.model].update({f"{pair.task}/{k}": v for k, v in pair.metrics.items()})
    return metrics


def post_checks(records: dict[str, TrainingRecord], p: Preset, device: str, clean_val: Path | None,
                tok_dir: Path) -> dict[str, dict]:
    """Per model: exact memorisation of its training tokens, and its loss on the clean held-out documents."""
    import numpy as np
    from transformers import AutoModelForCausalLM

    from beyondscale.lab.data import encode, eval_windows
    from beyondscale.lab.losses import windows_loss
    from beyondscale.lab.memorise import exact_memorisation
    from beyondscale.lab.tokenizer import load_tokenizer

    clean_ids = encode(read_corpus(clean_val).texts, load_tokenizer(str(tok_dir))) if clean_val else None
    out = {}
    for name, r in records.items():
        model = AutoModelForCausalLM.from_pretrained(r["out"]).to(device)
        tokens = np.load(Path(r["out"]) / "lab" / "train_tokens.npy", mmap_mode="r")
        checks = {"memorisation": exact_memorisation(model, tokens, n_samples=p.memorisation_samples,
                                                     device=device)}
        if clean_ids is not None and len(clean_ids) >= r["context_length"]:
            checks["val_loss_clean"] = windows_loss(model, eval_windows(clean_ids, r["context_length"]), device)
        out[name] = checks
    return out


def _store_checks(store: str, records: dict[str, TrainingRecord], checks: dict[str, dict]) -> None:
    """Memorisation and the clean held-out loss join each stored record, so `beyondscale report` shows them."""
    from beyondscale.lab.record import store_checks

    for name, found in checks.items():
        if records[name].model_key:
            store_checks(store, records[name].model_key, found)


def summarise(rungs: list[Rung], records: dict[str, TrainingRecord], metrics: dict, checks: dict) -> dict[str, Any]:
    from beyondscale.analysis.compute_equivalent import compute_equivalents

    rows = []
    for rung in rungs:
        r = records[rung.name]
        rows.append({"name": rung.name, "kind": rung.kind, "arch": rung.arch, "data": rung.data,
                     "matched_dense": rung.matched_dense, "teacher": rung.teacher,
                     **{k: r.get(k) for k in ("params_total", "params_active", "tokens", "train_flops", "val_loss",
                                              "train_loss", "generalisation_gap", "wall_s", "tokens_per_s", "mfu",
                                              "energy_j", "energy_source", "model_key", "expert_load", "out")},
                     **checks[rung.name], "eval": metrics.get(rung.name, {})})
    by_name = {row["name"]: row for row in rows}
    main_budget = next(r.tokens for r in rungs if r.kind == "dense")  # the alternatives' budget: L(C) keeps to it
    dense = [row for row, rung in zip(rows, rungs, strict=True) if rung.kind == "dense" and rung.tokens == main_budget]
    alts = [{**row, "wall_ratio": row["wall_s"] / by_name[row["matched_dense"]]["wall_s"]}
            for row in rows if row["kind"] != "dense"]
    doc: dict[str, Any] = {"rungs": rows}
    for key, loss in (("compute_equivalent", "val_loss"), ("compute_equivalent_clean", "val_loss_clean")):
        if all(loss in row for row in rows):
            try:
                doc[key] = compute_equivalents([{**r, "val_loss": r[loss]} for r in dense],
                                               [{**r, "val_loss": r[loss]} for r in alts])
            except UserError as err:
                doc[key] = {"error": str(err)}
    return doc


@dataclass(frozen=True)
class TrainedLadder:
    """A trained ladder: its rungs, each rung's training record, the data files and the shared tokenizer."""

    rungs: tuple[Rung, ...]
    records: dict[str, dict]
    data: dict[str, Path]
    tokenizer: Path

    def model_specs(self) -> dict[str, str]:
        """name -> model spec (`name=folder`), as `evaluate` takes them."""
        return {r.name: f"{r.name}={self.records[r.name]['out']}" for r in self.rungs}


def train_ladder(p: Preset, raw: Corpus, curated: Corpus | None, folder: Path, *, store: str | None, device: str,
                 show_progress: bool = True, executor: Any = None, skip_kinds: tuple[str, ...] = ()) -> TrainedLadder:
    """Data split, tokenizer and every rung of the preset (minus `skip_kinds`), trained or read back."""
    paths = prepare_data(raw, curated, folder / "data")
    rungs = tuple(r for r in plan_rungs(p, curated is not None) if r.kind not in skip_kinds)
    records = train_rungs(p, list(rungs), paths, folder, store=store, device=device, show_progress=show_progress,
                          executor=executor)
    return TrainedLadder(rungs, records, paths, folder / "tokenizer")


def run_sweep(data: str, out: str, *, preset: str = "cpu", curated: str | None = None, tasks: list[str] | None = None,
              tokens: int | list[int] | None = None, store: str = DEFAULT_STORE, device: str = "auto",
              show_progress: bool = True, executor: Any = None) -> dict[str, Any]:
    """Train, evaluate and analyse a ladder; writes OUT/sweep.json and returns the same document.
    `tokens`: one budget, or several (the dense rungs train at each; the first is the alternatives').
    `executor` (a RayExecutor): trains and evaluates the rungs on a Ray cluster."""
    from beyondscale.executors import LocalExecutor

    p, raw, cur = check_inputs(preset, data, curated)
    p = with_budgets(p, tokens)
    device = (executor or LocalExecutor()).resolve_device(device)  # None: train here, in this process
    folder = Path(out).expanduser().resolve()
    ladder = train_ladder(p, raw, cur, folder, store=store, device=device, show_progress=show_progress,
                          executor=executor)
    rungs, records, paths = list(ladder.rungs), ladder.records, ladder.data
    metrics = evaluate_rungs(records, [str(paths["task"]), *(tasks or [])], store, p, device, show_progress,
                             executor)
    checks = post_checks(records, p, device, paths.get("val_clean"), folder / "tokenizer")
    _store_checks(store, records, checks)
    doc = {"preset": preset, "note": p.note, "tokens_per_rung": p.tokens, "token_budgets": p.budgets,
           "data": raw.source,
           "curated": cur.source if cur else None, **summarise(rungs, records, metrics, checks)}
    (folder / "sweep.json").write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    return doc
