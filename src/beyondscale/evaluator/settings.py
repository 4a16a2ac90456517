"""How to evaluate: one settings object flows from the command line down to every unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beyondscale.measure.cost import CostConfig


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

    def costs(self) -> CostConfig:
        """The price, grid and site figures of the cost and carbon columns (defaults labelled as such)."""
        return CostConfig(usd_per_hour=self.usd_per_hour, region=self.region,
                          grid_gco2_per_kwh=self.grid_gco2_per_kwh, pue=self.pue)

    def score_config(self) -> dict[str, Any]:
        """What changes the scores of a (model, task): part of the task's resume key."""
        return {
            "seed": self.seed,
            "num_fewshot": self.num_fewshot,
            "max_length": self.max_length,
            "add_bos_token": self.add_bos_token,
            "rolling_stride": self.rolling_stride,
        }


def parse_batch_size(value: Any) -> int | str | None:
    """'auto' or a positive integer, also written as text (a flag, a study setting); None for anything else,
    which each caller refuses in its own words."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if not isinstance(value, bool) and text.isdigit() and int(text) > 0:
        return int(text)
    return None
