"""`--tracker` and `--tracker-args` on eval, train, sweep and quickstart: the trackers open (library, keys and
server checked) before any work, get what the command produced, and close however the command ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from beyondscale import track

TrackerOpt = Annotated[list[str] | None, typer.Option(
    "--tracker", help="mlflow, wandb, tensorboard or trackio (repeatable): also log this run there "
                      "(pip install 'beyondscale[track]').")]
TrackerArgsOpt = Annotated[str | None, typer.Option(
    "--tracker-args", help="k=v,... for the trackers, as lm-eval's --wandb_args (mlflow: tracking_uri=..., "
                           "experiment_name=...; wandb: project=..., mode=offline; tensorboard: log_dir=...); "
                           "tracker.key=v for one tracker only.")]


@contextmanager
def trackers(names: list[str] | None, args: str | None) -> Iterator[list[track.Tracker]]:
    """The opened trackers ([] when none asked for); a bad name, key, library or server stops here."""
    if not names:
        if args:
            from beyondscale.errors import UserError

            raise UserError("--tracker-args: given without --tracker")
        yield []
        return
    opened = track.open_trackers(names, args)
    try:
        yield opened
    finally:
        track.close_trackers(opened)
