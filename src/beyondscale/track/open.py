"""`open_trackers`: every selected tracker checked and connected before any work starts.

A missing library, an unknown `--tracker-args` key or an unreachable tracking server is one line (exit 2)
before a model is loaded, so a long evaluation never ends in a tracker error.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from beyondscale.track.args import check_names, parse_tracker_args
from beyondscale.track.base import Tracker, first_line, missing_library

log = logging.getLogger(__name__)

#: tracker -> (the module it needs, its class as "module:Class" under beyondscale.track)
BACKENDS: dict[str, tuple[str, str]] = {
    "mlflow": ("mlflow", "mlflow_tracker:MlflowTracker"),
    "wandb": ("wandb", "wandb_tracker:WandbTracker"),
    "tensorboard": ("tensorboard", "tensorboard_tracker:TensorboardTracker"),
    "trackio": ("trackio", "trackio_tracker:TrackioTracker"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _factory(name: str) -> Callable[[Mapping[str, str]], Any]:
    module, cls = BACKENDS[name][1].split(":")
    return getattr(importlib.import_module(f"beyondscale.track.{module}"), cls)


def open_trackers(names: Sequence[str], args: str | Mapping[str, Mapping[str, str]] | None = None) -> list[Tracker]:
    """The selected trackers, connected; `args` is the `--tracker-args` text or its parsed form."""
    names = check_names(names)
    if not names:
        return []
    parsed = args if isinstance(args, Mapping) else parse_tracker_args(args, names)
    for name in names:  # every library first: one missing is said before anything is created
        if not _installed(BACKENDS[name][0]):
            raise missing_library(name, BACKENDS[name][0])
    opened: list[Tracker] = []
    try:
        for name in names:
            opened.append(_factory(name)(parsed.get(name, {})))
    except BaseException:
        close_trackers(opened)
        raise
    return opened


def close_trackers(trackers: Sequence[Tracker]) -> None:
    """End every open run; a tracker that fails to close does not stop the others."""
    for tracker in trackers:
        try:
            tracker.end()
        except Exception as err:  # noqa: BLE001 - closing the others matters more
            log.warning("--tracker %s: could not end its run (%s)", tracker.name, first_line(err))
