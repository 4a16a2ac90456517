"""The one interface every experiment tracker implements, and what the trackers share.

A `Tracker` holds at most one open run: `start_run` opens it with its parameters (ending any open
one; params are given once, as trackio and MLflow want them), `log_metrics` and `log_artifact` write to
it, `end` closes it. One tracker object serves several runs in
turn (one per model), so the libraries' own process-wide state is never shared between two trackers.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from beyondscale.errors import UserError

EXTRA = "pip install 'beyondscale[track]'"


@runtime_checkable
class Tracker(Protocol):
    """An experiment tracker's run, seen the same way whichever library is behind it."""

    name: str  # "mlflow" | "wandb" | "tensorboard" | "trackio"
    location: str  # where its runs land (a URI, a folder, a project), for the user

    def start_run(self, name: str, group: str | None, params: Mapping[str, Any], kind: str = "eval") -> None:
        """Open a run named `name` in `group` (the study) with its parameters; `kind` is eval, train or report."""
        ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def log_artifact(self, path: str | Path) -> None: ...

    def end(self) -> None: ...


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Libraries that print banners (trackio, wandb) print to stderr: stdout stays for `--json` documents."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """Nested dicts become dotted keys; lists and other objects become JSON text; None is left out."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif value is None:
            continue
        elif isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str, sort_keys=True)
    return out


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Numbers only (no None, NaN, bools or text): trackers chart floats."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))}


def missing_library(tracker: str, module: str, err: BaseException | None = None) -> UserError:
    why = f" ({type(err).__name__}: {str(err).splitlines()[0]})" if err and str(err) else ""
    return UserError(f"--tracker {tracker}: the {module} library is not installed{why}; {EXTRA}")


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__
