"""TensorBoard: event files under LOG_DIR/GROUP/RUN, scalars by tag, params as text and in the HParams tab.

TensorBoard has no artifact store: an artifact is recorded as its absolute path (text tag `artifacts`).
`tensorboard --logdir LOG_DIR` shows every model of every study side by side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.track.base import flatten, missing_library


def _folder(name: str) -> str:
    return re.sub(r"[^\w.\-]", "_", name) or "_"


class TensorboardTracker:
    name = "tensorboard"

    def __init__(self, args: Mapping[str, str]) -> None:
        self.root = Path(args.get("log_dir") or "runs")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"--tracker-args log_dir={self.root}: cannot create it ({err.strerror})") from None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise missing_library("tensorboard", "tensorboard", err) from None
        self._writer_class = SummaryWriter
        self.location = f"event files under {self.root}"
        self.writer: Any = None
        self.folder: Path | None = None
        self._artifacts = 0

    def start_run(self, name: str, group: str | None, params: Mapping[str, Any], kind: str = "eval") -> None:
        from torch.utils.tensorboard.summary import hparams

        self.end()
        self.folder = self.root / _folder(group or "ungrouped") / _folder(name)
        self.writer = self._writer_class(log_dir=str(self.folder))
        flat = {**flatten(params), "beyondscale.kind": kind}
        table = "\n".join(["| param | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in flat.items())])
        self.writer.add_text("params", table, 0)
        for summary in hparams(flat, {}):  # the HParams tab: one session per model
            self.writer.file_writer.add_summary(summary)
        self._artifacts = 0

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        writer = self._open()
        for key, value in metrics.items():
            writer.add_scalar(key, float(value), int(step or 0))

    def log_artifact(self, path: str | Path) -> None:
        self._open().add_text("artifacts", json.dumps(str(Path(path).resolve())), self._artifacts)
        self._artifacts += 1

    def end(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _open(self) -> Any:
        if self.writer is None:
            raise RuntimeError("tensorboard tracker: no open run (call start_run first)")
        return self.writer
