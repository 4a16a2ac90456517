"""trackio: local runs (its SQLite store under $TRACKIO_DIR), one per model, grouped by the study.

Only the local store is used (no Space, no server): `trackio show --project PROJECT` opens it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beyondscale.track.base import flatten, missing_library, quiet_stdout


class TrackioTracker:
    name = "trackio"

    def __init__(self, args: Mapping[str, str]) -> None:
        try:
            with quiet_stdout():
                import trackio
        except ImportError as err:
            raise missing_library("trackio", "trackio", err) from None
        self.trackio = trackio
        self.project = args.get("project") or "beyondscale"
        self.group = args.get("group")
        self.location = f"trackio project {self.project} (local store {getattr(trackio, 'TRACKIO_DIR', '?')})"
        self.run: Any = None

    def start_run(self, name: str, group: str | None, params: Mapping[str, Any], kind: str = "eval") -> None:
        self.end()
        wanted = {"embed": False, "auto_log_gpu": False, "auto_log_cpu": False}
        accepted = inspect.signature(self.trackio.init).parameters
        options = {k: v for k, v in wanted.items() if k in accepted}
        with quiet_stdout():
            self.run = self.trackio.init(project=self.project, name=name, group=self.group or group,
                                         config={**flatten(params), "beyondscale.kind": kind}, **options)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._open().log(dict(metrics), step=step)

    def log_artifact(self, path: str | Path) -> None:
        with quiet_stdout():
            self._open().log_artifact(str(path), type="beyondscale-output")

    def end(self) -> None:
        if self.run is not None:
            current = getattr(getattr(self.trackio, "context_vars", None), "current_run", None)
            with quiet_stdout():
                if current is not None and current.get() is self.run:
                    self.trackio.finish()  # also clears trackio's current run: its exit hook prints nothing then
                else:
                    self.run.finish()
            self.run = None

    def _open(self) -> Any:
        if self.run is None:
            raise RuntimeError("trackio tracker: no open run (call start_run first)")
        return self.run
