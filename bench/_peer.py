"""Shared set-up for the lm-evaluation-harness peer benches.

Both benches run lm-evaluation-harness (its HF backend) and beyondscale on the *same* weights and
the *same* local task files: a `.gguf` model is compared through the HF folder beyondscale
converted it to (safetensors, fp32), which lm-evaluation-harness loads like any other folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

# Metrics lm-evaluation-harness knows; our task files may list more (ece), which it would refuse.
LM_EVAL_METRICS = {"acc", "acc_norm", "brier_score", "perplexity", "word_perplexity", "byte_perplexity",
                   "bits_per_byte", "exact_match"}


def require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        sys.exit("error: this bench needs lm-evaluation-harness: pip install -e '.[bench]'")


def resolve_model(spec: str) -> tuple[str, Path, str]:
    """(display name, HF folder with the exact weights beyondscale evaluates, spec for beyondscale)."""
    from beyondscale.models import load_model, parse_model_ref
    from beyondscale.models.load import _gguf_cache

    if spec in ("smollm2", "gemma3"):
        from beyondscale.quickstart import PACKAGED_MODELS

        entry = PACKAGED_MODELS["SmolLM2-135M-Instruct" if spec == "smollm2" else "Gemma-3-270M"]
        spec = f"{entry.name}={entry.path()}"
    ref = parse_model_ref(spec)
    if ref.kind == "gguf":
        identity = ref.identity()
        folder = _gguf_cache(ref, identity)
        if not (folder / "config.json").exists():
            load_model(ref, device="cpu", identity=identity)  # converts once into the cache
        return ref.name, folder, spec
    return ref.name, Path(ref.location), spec


def lm_eval_task_dir(task_files: list[Path], out: Path) -> list[str]:
    """Copies of our task YAMLs that lm-evaluation-harness reads: absolute data paths, its metrics only."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for path in task_files:
        spec = yaml.safe_load(path.read_text())
        files = spec.get("dataset_kwargs", {}).get("data_files")
        if isinstance(files, dict):
            spec["dataset_kwargs"]["data_files"] = {k: str((path.parent / v).resolve()) for k, v in files.items()}
        elif isinstance(files, str):
            spec["dataset_kwargs"]["data_files"] = str((path.parent / files).resolve())
        if "metric_list" in spec:
            spec["metric_list"] = [m for m in spec["metric_list"] if m["metric"] in LM_EVAL_METRICS]
        spec["task"] = "peer_" + spec["task"]
        (out / path.name).write_text(yaml.safe_dump(spec, sort_keys=False))
        names.append(spec["task"])
    return names


def quickstart_tasks(limit: int | None, out: Path) -> dict[str, Path]:
    from beyondscale.quickstart import build_quickstart_tasks

    return {p.stem: p for p in build_quickstart_tasks(out, n_items=limit)}
