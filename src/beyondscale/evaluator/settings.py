"""How to evaluate: one settings object flows from the command line down to every unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class EvalSettings:
    """How to evaluate. Fields that change scores enter the resume keys; the rest do not."""

    limit: int | float | None = None  # a count, or (lm-eval tasks) a fraction in (0, 1)
    seed: int = 1234
    batch_size: int | str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    num_fewshot: int | None = None
    max_length: int | None = None
    add_bos_token: bool | None = None
    rolling_stride: int | None = None
    trust_remote_code: bool = False
    family: str | None = None
    quantize: str = "none"  # int8 | int4 | none: a quantised variant is a model of its own (key and label)
    # measurement
    cpu_watts: float | None = None
    region: str | None = None
    grid_gco2_per_kwh: float | None = None
    pue: float | None = None  # None: not given; 1.0 is used and labelled a default
    usd_per_hour: float | None = None
    # sharing a store: a (model, task) claim whose heartbeat is older than this is taken over
    claim_timeout_s: float = 60.0
    # lm-evaluation-harness tasks (evaluator.harness): lm-eval's own options, as its command line names them
    include_path: str | None = None
    allow_task_code: bool = False
    apply_chat_template: bool | str = False
    system_instruction: str | None = None
    gen_kwargs: str | None = None
    output_path: str | None = None
    log_samples: bool = False
    bootstrap_iters: int = 100000

    def score_config(self) -> dict[str, Any]:
        """What changes the scores of a (model, task): part of the task's resume key."""
        return {
            "seed": self.seed,
            "num_fewshot": self.num_fewshot,
            "max_length": self.max_length,
            "add_bos_token": self.add_bos_token,
            "rolling_stride": self.rolling_stride,
        }
