"""`--tracker-args k=v,...`: the settings each tracker accepts, checked before any work.

A key goes to every selected tracker that accepts it (`project` is W&B's and trackio's); `name.key=v`
(e.g. `wandb.project=x`) goes to that tracker only. A key no selected tracker accepts is one line naming
it and the accepted ones. Values cannot contain commas.
"""

from __future__ import annotations

from collections.abc import Sequence

from beyondscale.errors import UserError

#: tracker -> {key: what it sets}
ACCEPTED: dict[str, dict[str, str]] = {
    "mlflow": {
        "tracking_uri": "where runs are stored (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
        "experiment_name": "MLflow experiment (default beyondscale)",
        "artifact_location": "where a new experiment keeps artifacts (a folder or URI)",
    },
    "wandb": {
        "project": "W&B project (default beyondscale)",
        "entity": "W&B team or user",
        "mode": "online | offline | disabled (default $WANDB_MODE, else online)",
        "dir": "folder for W&B's local files (default: the current folder)",
        "group": "run group (default: the beyondscale run id)",
        "job_type": "W&B job type (default: eval or train)",
        "base_url": "W&B server (default $WANDB_BASE_URL, else https://api.wandb.ai)",
    },
    "tensorboard": {
        "log_dir": "folder of event files; runs go to LOG_DIR/GROUP/RUN (default runs)",
    },
    "trackio": {
        "project": "trackio project (default beyondscale); stored locally under $TRACKIO_DIR",
        "group": "run group (default: the beyondscale run id)",
    },
}
TRACKERS: tuple[str, ...] = tuple(ACCEPTED)


def check_names(names: Sequence[str]) -> list[str]:
    """The selected trackers, each once, in order; an unknown name is one line."""
    picked: list[str] = []
    for name in names:
        if name not in ACCEPTED:
            raise UserError(f"--tracker {name}: unknown tracker; expected one of {', '.join(TRACKERS)}")
        if name not in picked:
            picked.append(name)
    return picked


def parse_tracker_args(text: str | None, names: Sequence[str] = TRACKERS) -> dict[str, dict[str, str]]:
    """`"k=v,wandb.k=v"` -> {tracker: {key: value}} for the selected trackers, validated."""
    names = check_names(names)
    out: dict[str, dict[str, str]] = {n: {} for n in names}
    for piece in (p.strip() for p in (text or "").split(",")):
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise UserError(f"--tracker-args {piece!r}: expected key=value (pairs separated by commas)")
        scope, dot, bare = key.partition(".")
        targets = [scope] if dot and scope in ACCEPTED else [n for n in names if key in ACCEPTED[n]]
        bare = bare if dot and scope in ACCEPTED else key
        if dot and scope in ACCEPTED and scope not in names:
            raise UserError(f"--tracker-args {key}: tracker {scope} is not selected (--tracker {scope})")
        if not targets or any(bare not in ACCEPTED[t] for t in targets):
            raise UserError(f"--tracker-args {key}: unknown key for {'/'.join(targets or names)}; "
                            f"accepted: {_accepted(targets or names)}")
        for t in targets:
            out[t][bare] = value
    return out


def _accepted(names: Sequence[str]) -> str:
    return "; ".join(f"{n}: {', '.join(ACCEPTED[n])}" for n in names)
