"""5-shot MMLU-format scoring: beyondscale's engine (prefix cache across documents) against lm-eval's HF backend.

Both run lm-eval's own `mmlu_abstract_algebra` task file (description + `first_n` few-shot sampler) on local
data written here (40 test questions, 5 dev questions as the shots), through lm-eval's `simple_evaluate`:
lm-eval with `HFLM`, beyondscale with `BeyondscaleLM` (prefix cache on, then off). Prints wall time, the
ratio against lm-eval, the largest per-document log-likelihood difference, and the limit counted in unique
tokens: the tokens lm-eval's backend reads (each document's context once, its logits cache) over the tokens
the prefix cache reads (the shared prefix once, each document's remainder).

    python bench/lm_eval_mmlu_prefix.py --model smollm2 [--limit 40] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _peer import resolve_model  # noqa: E402

TOPICS = ["groups", "rings", "fields", "permutations", "polynomials", "cyclic groups", "homomorphisms", "ideals"]


def question(i: int) -> dict:
    topic, n, m = TOPICS[i % len(TOPICS)], i % 11 + 2, i % 7 + 3
    text = (f"Let G be a finite structure studied in the theory of {topic}, with {n} generators and relations of "
            f"order {m}. Suppose every element can be written as a product of at most {n + m} generators and the "
            f"identity is unique. Which statement about the order of the structure described in problem {i} holds?")
    choices = [f"It is at most {n ** m}", f"It is exactly {n * m}", f"It is divisible by {m + 1}", "None of these"]
    return {"question": text, "subject": "abstract_algebra", "choices": choices, "answer": (i * 7) % 4}


def write_task(folder: Path, n_test: int) -> None:
    import lm_eval

    data = folder / "data"
    data.mkdir(parents=True)
    for split, rows in (("dev", [question(1000 + i) for i in range(5)]), ("test", [question(i) for i in range(n_test)])):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    installed = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default" / "mmlu_abstract_algebra.yaml"
    (folder / "mmlu5.yaml").write_text(
        f"include: {installed}\ntask: mmlu5_local\ntag: null\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    dev: {data / 'dev.jsonl'}\n    test: {data / 'test.jsonl'}\n"
        "num_fewshot: 5\n")


def run(lm, folder: Path) -> tuple[dict, float]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(folder), include_defaults=False)
    start = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=["mmlu5_local"], task_manager=manager, log_samples=True, bootstrap_iters=0)
    return out, time.perf_counter() - start


def lls(out: dict) -> list[list[float]]:
    docs = sorted(out["samples"]["mmlu5_local"], key=lambda s: s["doc_id"])
    return [[r[0][0] for r in d["resps"]] for d in docs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from beyondscale.engine.lm_eval_model import BeyondscaleLM

    name, folder, _ = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        write_task(Path(tmp), args.limit)
        hf = HFLM(pretrained=str(folder), device=args.device, dtype="float32", batch_size=8)
        theirs, t_hf = run(hf, Path(tmp))
        del hf
        ours_lm = BeyondscaleLM(pretrained=str(folder), device=args.device, dtype="float32")
        ours, t_ours = run(ours_lm, Path(tmp))
        ours_tokens = ours_lm.usage["tokens_in"]
        off_lm = BeyondscaleLM(engine=ours_lm.engine, prefix_cache=False)
        off, t_off = run(off_lm, Path(tmp))
    tok = AutoTokenizer.from_pretrained(folder)
    contexts = {d["arguments"][0][0] for d in theirs["samples"]["mmlu5_local"]}
    hf_tokens = sum(len(tok(c)["input_ids"]) for c in contexts)  # one forward per context (logits cache)
    diff = max(abs(a - b) for x, y in zip(lls(theirs), lls(ours), strict=True) for a, b in zip(x, y, strict=True))
    same_acc = theirs["results"]["mmlu5_local"]["acc,none"] == ours["results"]["mmlu5_local"]["acc,none"]
    print(f"{name}, {args.limit} documents, 5-shot MMLU format, device {args.device}")
    print(f"  lm-eval HFLM (batch 8)         {t_hf:7.1f} s   {hf_tokens} context tokens")
    print(f"  beyondscale, no prefix cache   {t_off:7.1f} s   ratio {t_hf / t_off:4.1f}x")
    print(f"  beyondscale, prefix cache      {t_ours:7.1f} s   ratio {t_hf / t_ours:4.1f}x   {ours_tokens} tokens read")
    print(f"  limit counted in unique tokens: {hf_tokens / ours_tokens:4.1f}x")
    print(f"  max |d loglik| per document {diff:.2e}; acc equal: {same_acc}")
    return 0 if diff < 1e-3 and same_acc else 1


if __name__ == "__main__":
    sys.exit(main())
