"""Weights & Biases: one run per model, grouped by the study (`group`), `job_type` eval or train.

`mode=offline` writes the run under DIR/wandb/offline-run-*/ for `wandb sync` later; online mode checks
the server answers before any work starts. Runs are created with `reinit="create_new"` and written
through the run object, so a user's own `wandb.run` is left alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.track.base import flatten, missing_library, quiet_stdout
from beyondscale.track.probe import check_reachable

MODES = ("online", "offline", "disabled")


class WandbTracker:
    name = "wandb"

    def __init__(self, args: Mapping[str, str]) -> None:
        self.mode = args.get("mode") or os.environ.get("WANDB_MODE") or "online"
        if self.mode not in MODES:
            raise UserError(f"--tracker-args mode={self.mode}: expected one of {', '.join(MODES)}")
        if self.mode == "online":
            base = args.get("base_url") or os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
            check_reachable("--tracker-args base_url", base)
        self.dir = args.get("dir")
        if self.dir:
            try:
                Path(self.dir).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise UserError(f"--tracker-args dir={self.dir}: cannot create it ({err.strerror})") from None
        try:
            with quiet_stdout():
                import wandb
        except ImportError as err:
            raise missing_library("wandb", "wandb", err) from None
        self.wandb = wandb
        self.args = dict(args)
        self.project = args.get("project") or "beyondscale"
        self.location = f"W&B project {self.project} ({self.mode}{', dir ' + self.dir if self.dir else ''})"
        self.run: Any = None

    def start_run(self, name: str, group: str | None, params: Mapping[str, Any], kind: str = "eval") -> None:
        self.end()
        settings = self.wandb.Settings(console="off", quiet=True, x_disable_stats=True, save_code=False)
        with quiet_stdout():
            self.run = self.wandb.init(
                project=self.project, entity=self.args.get("entity"), name=name,
                group=self.args.get("group") or group, job_type=self.args.get("job_type") or kind,
                config=flatten(params), mode=self.mode, dir=self.dir, reinit="create_new", settings=settings)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._open().log(dict(metrics), step=step)

    def log_artifact(self, path: str | Path) -> None:
        path = Path(path)
        artifact = self.wandb.Artifact(re.sub(r"[^\w.-]", "_", path.name), type="beyondscale-output")
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path))
        with quiet_stdout():
            self._open().log_artifact(artifact)

    def end(self) -> None:
        if self.run is not None:
            with quiet_stdout():
                self.run.finish()
            self.run = None

    def _open(self) -> Any:
        if self.run is None:
            raise RuntimeError("wandb tracker: no open run (call start_run first)")
        return self.run
