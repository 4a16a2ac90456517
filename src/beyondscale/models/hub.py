"""Resolve a hub model's revision (a branch, tag or commit) to the commit it names now.

A branch moves; results keyed by "main" would silently mix two models. The local HF cache already
records which commit each ref pointed at when it was downloaded (snapshots/<commit>/), which is
also what transformers will load offline; otherwise the hub is asked once (`HfApi.model_info`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from beyondscale.errors import UserError

_COMMIT = re.compile(r"[0-9a-f]{40}")


def _hub_cache() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE")
    return constants.HF_HUB_OFFLINE if flag is None else flag.strip().lower() in ("1", "true", "yes", "on")


def resolve_commit(repo: str, revision: str | None, spec: str) -> str:
    """The 40-hex commit that `revision` (default "main") of hub model `repo` designates."""
    if revision and _COMMIT.fullmatch(revision):
        return revision
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "config.json", cache_dir=_hub_cache(), revision=revision or "main")
    if isinstance(cached, str):
        return Path(cached).parent.name  # .../snapshots/<commit>/config.json
    if _offline():
        raise UserError(
            f"--model {spec}: hub model not in the local cache and the hub is offline (HF_HUB_OFFLINE); "
            f"cannot resolve revision {revision or 'main'!r} to a commit"
        )
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo, revision=revision, timeout=20)
    except Exception as err:  # noqa: BLE001 - network, auth or missing repository: one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--model {spec}: cannot resolve the hub revision to a commit ({first[:200]})") from None
    if not info.sha:
        raise UserError(f"--model {spec}: the hub returned no commit for revision {revision or 'main'!r}")
    return info.sha
