"""`ModelRef`: what the user typed, resolved to a kind of model source and a stable identity.

A model is one of: a Hugging Face hub id (`org/name` or `org/name@revision`), a local HF folder
(config.json + safetensors, the lab writes these too), or a `.gguf` file. The identity is a
content fingerprint (weights in full, config, tokenizer, generation config; a hub model's commit),
so results are keyed by *what* was evaluated, not by where it lay: moving a folder keeps its
results, changing any byte of a weight file invalidates them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from beyondscale.errors import UserError
from beyondscale.keys import content_key
from beyondscale.store.training import current_names

ModelKind = Literal["hub", "folder", "gguf"]
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
LAB_MARKER = "beyondscale_lab.json"  # written by the lab next to config.json: training record
# Files a tokenizer is built from (any that exist are part of the identity).
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt",
    "merges.txt", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json",
)


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference. `spec` is what the user typed; `name` is for display."""

    spec: str
    kind: ModelKind
    location: str  # hub id, folder path or .gguf file path (absolute for local)
    name: str
    revision: str | None = None
    gguf_file: str | None = None  # file name inside `folder` for GGUF

    @property
    def folder(self) -> Path:
        path = Path(self.location)
        return path.parent if self.kind == "gguf" else path

    def weight_files(self) -> list[Path]:
        if self.kind == "gguf":
            return [Path(self.location)]
        if self.kind == "hub":
            return []
        return sorted(p for p in Path(self.location).iterdir() if p.suffix in WEIGHT_SUFFIXES)

    def identity(self) -> str:
        """A fingerprint of everything that changes scores (see `identity_parts`)."""
        return content_key(self.identity_parts())

    def identity_parts(self) -> dict:
        """What the identity covers: full digests of the weights, config, generation config and
        tokenizer files of a folder; a GGUF file's digest (it embeds config, tokenizer and
        quantisation); a hub model's resolved commit (immutable), never a branch name."""
        from beyondscale.models.hashing import file_digest, files_digest

        if self.kind == "hub":
            from beyondscale.models.hub import resolve_commit

            return {"hub": self.location, "commit": resolve_commit(self.location, self.revision, self.spec)}
        if self.kind == "gguf":
            return {"gguf": file_digest(Path(self.location))}
        folder = Path(self.location)
        return {
            "weights": files_digest(self.weight_files()),
            "config": files_digest([folder / "config.json"]),
            "generation_config": files_digest([folder / "generation_config.json"]),
            "tokenizer": files_digest([folder / name for name in TOKENIZER_FILES]),
        }

    def lab_record(self) -> dict | None:
        """The lab's training record (tokens, FLOPs, loss curve) when the folder has one, as a plain dict (it may be
        hand-written and partial) under the record's current names (`store.training.current_names`)."""
        if self.kind != "folder":
            return None
        marker = Path(self.location) / LAB_MARKER
        if not marker.is_file():
            return None
        try:
            found = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"{marker}: not a readable lab record ({err})") from None
        if not isinstance(found, dict):
            raise UserError(f"{marker}: not a readable lab record (not a JSON object)")
        return current_names(found)

    def to_dict(self) -> dict:
        return asdict(self)


def _looks_like_hub_id(spec: str) -> bool:
    base = spec.split("@", 1)[0]
    parts = base.split("/")
    return (
        len(parts) in (1, 2)
        and all(parts)
        and not spec.startswith((".", "/", "~"))
        and not base.endswith(WEIGHT_SUFFIXES)
    )


def parse_model_ref(spec: str, name: str | None = None) -> ModelRef:
    """Resolve a `--model` value. `NAME=SPEC` sets the display name (when SPEC is not a path itself)."""
    spec = spec.strip()
    if not spec:
        raise UserError("--model: empty model reference")
    if name is None and "=" in spec and not Path(spec).exists():
        maybe_name, rest = spec.split("=", 1)
        if maybe_name and "/" not in maybe_name and rest:
            name, spec = maybe_name, rest
    path = Path(os.path.expanduser(spec))
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if path.suffix != ".gguf":
                raise UserError(
                    f"--model {spec}: a file must be a .gguf; for other weights pass the folder that holds config.json"
                )
            return ModelRef(spec, "gguf", str(path), name or path.stem, gguf_file=path.name)
        if not (path / "config.json").is_file():
            raise UserError(f"--model {spec}: folder has no config.json (not a Hugging Face model folder)")
        ggufs = sorted(path.glob("*.gguf"))
        has_weights = any(p.suffix in WEIGHT_SUFFIXES[:4] for p in path.iterdir())
        if not has_weights and len(ggufs) == 1:
            return ModelRef(spec, "gguf", str(ggufs[0]), name or path.name, gguf_file=ggufs[0].name)
        if not has_weights:
            raise UserError(f"--model {spec}: folder has no weights (*.safetensors or *.bin)")
        return ModelRef(spec, "folder", str(path), name or path.name)
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or os.sep in spec.split("@")[0][:1]:
        raise UserError(f"--model {spec}: no such file or folder")
    if _looks_like_hub_id(spec):
        repo, _, revision = spec.partition("@")
        return ModelRef(spec, "hub", repo, name or repo.split("/")[-1], revision=revision or None)
    raise UserError(f"--model {spec}: no such file or folder, and not a hub id (org/name)")
