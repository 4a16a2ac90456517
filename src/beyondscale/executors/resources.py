"""What a unit asks Ray for: CPUs, GPUs and memory, the memory estimated from the model's bytes on disk.

Ray schedules by these requests (it does not measure them), so a big model lands on a node with room
for it. The memory figure is an ESTIMATE unless `--ray-memory-gb` sets it:

    weights on disk x (bytes per parameter in memory / bytes per parameter on disk) x 1.2 + 1 GiB

where 1.2 covers activations and the KV cache at evaluation batch sizes and 1 GiB the worker's Python,
torch and tokenizer (both assumed, not measured). A GGUF file is taken as ~4.5 bits per weight
(Q4_K-sized), de-quantised to the load dtype.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
RUNTIME_BYTES = GIB  # assumed: Python + torch + tokenizer in a worker
ACTIVATION_FACTOR = 1.2  # assumed: activations and KV cache on top of the weights
GGUF_BYTES_PER_PARAM = 4.5 / 8  # assumed: a Q4_K-sized file
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "float64": 8}


@dataclass(frozen=True)
class Resources:
    """Per-unit requests. None: num_gpus 1 for a unit on cuda (else 0); memory estimated per model."""

    num_cpus: float = 1.0
    num_gpus: float | None = None
    memory_gb: float | None = None


def _stored_bytes_per_param(folder: Path) -> float:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 4.0
    return float(DTYPE_BYTES.get(str(config.get("torch_dtype") or config.get("dtype") or "float32"), 4))


def estimate_memory(ref: Any, dtype: str, device: str, resources: Resources) -> tuple[int, str]:
    """(bytes, how it was obtained) for a model (a ModelRef) loaded with `dtype` on `device`: the value
    set by the user, or the estimate above."""
    if resources.memory_gb is not None:
        return int(resources.memory_gb * GIB), "set by --ray-memory-gb"
    files = [f for f in ref.weight_files() if f.is_file()]
    if not files:
        return RUNTIME_BYTES, "estimate: weights not visible from the driver, runtime only"
    on_disk = sum(f.stat().st_size for f in files)
    stored = GGUF_BYTES_PER_PARAM if ref.kind == "gguf" else _stored_bytes_per_param(ref.folder)
    if dtype != "auto":
        in_memory = float(DTYPE_BYTES.get(dtype, 4))
    else:  # "auto": float32 on CPU, the checkpoint's own dtype on GPU (float32 for a GGUF there too)
        in_memory = 4.0 if device == "cpu" or ref.kind == "gguf" else stored
    weights = on_disk * in_memory / stored
    return int(weights * ACTIVATION_FACTOR + RUNTIME_BYTES), "estimate from bytes on disk"


def model_resources(ref: Any, dtype: str, device: str, resources: Resources) -> dict[str, float]:
    """Ray task options for work on one model: num_cpus, num_gpus, memory (bytes)."""
    gpus = resources.num_gpus
    if gpus is None:
        gpus = 1.0 if device.startswith("cuda") else 0.0
    return {
        "num_cpus": resources.num_cpus,
        "num_gpus": gpus,
        "memory": estimate_memory(ref, dtype, device, resources)[0],
    }
