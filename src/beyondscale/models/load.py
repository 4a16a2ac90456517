"""Load a `ModelRef` into a model + tokenizer + `ModelFacts`, safely.

Safe by default: `trust_remote_code` is off unless asked for; weights load from safetensors, and
a `.bin` checkpoint only through `torch.load(weights_only=True)`: one that needs arbitrary
unpickling is refused. GGUF files are de-quantised by transformers once and cached as an ordinary
HF folder (safetensors + tokenizer), because the conversion (Gemma's tokenizer above all) takes
far longer than loading the result.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from beyondscale.errors import UserError
from beyondscale.models.cache import cache_dir
from beyondscale.models.facts import ModelFacts, compute_facts
from beyondscale.models.ref import ModelRef

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class LoadedModel:
    ref: ModelRef
    model: Any
    tokenizer: Any
    facts: ModelFacts
    device: str
    load_seconds: float
    notes: list[str] = field(default_factory=list)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"--device {device}: expected cpu, cuda or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype | str:
    if dtype == "auto":
        # fp32 on CPU: bf16 matmuls are slower there and scores must match an fp32 reference.
        return torch.float32 if device == "cpu" else "auto"
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: expected one of auto, {', '.join(sorted(DTYPES))}")
    return DTYPES[dtype]


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence the libraries while a model loads or a GGUF file converts: transformers' and the hub's
    progress bars ("Loading weights", "Converting and de-quantizing GGUF tensors", which uses tqdm
    directly), their warnings below error level, and Python warnings. Settings are restored after.
    Errors still raise and are turned into one-line UserErrors by the callers."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    bars, verbosity, gguf_tqdm = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity(), gguf_utils.tqdm
    gguf_logger = logging.getLogger("gguf")
    gguf_level = gguf_logger.level
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    gguf_utils.tqdm = functools.partial(gguf_tqdm, disable=True)
    gguf_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        gguf_utils.tqdm = gguf_tqdm
        gguf_logger.setLevel(gguf_level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def check_weights(ref: ModelRef) -> str:
    """Validate local weight files before transformers sees them; returns the weights format."""
    files = ref.weight_files()
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    if safetensors:
        from safetensors import safe_open

        for path in safetensors:
            try:
                with safe_open(str(path), framework="pt") as f:
                    f.keys()
            except Exception as err:  # noqa: BLE001 - any failure means an unreadable file
                raise UserError(f"{path}: not a valid safetensors file ({str(err).splitlines()[0]})") from None
        return "safetensors"
    bins = [p for p in files if p.suffix in (".bin", ".pt", ".pth")]
    if not bins:
        raise UserError(f"--model {ref.spec}: folder has no weights (*.safetensors or *.bin)")
    for path in bins:
        try:
            torch.load(path, map_location="meta", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(
                f"{path}: refused: loading it needs unpickling arbitrary objects (weights_only=True failed: "
                f"{first[:120]}); convert it to safetensors"
            ) from None
    return "bin"


def _gguf_cache(ref: ModelRef, identity: str) -> Path:
    return cache_dir() / "gguf" / f"{Path(ref.location).stem}-{identity}"


def _gguf_file_type(path: Path) -> str:
    try:
        from gguf import GGUFReader
        from gguf.constants import LlamaFileType

        field_ = GGUFReader(str(path)).fields.get("general.file_type")
        if field_ is not None:
            return "gguf:" + LlamaFileType(int(field_.parts[field_.data[0]][0])).name.removeprefix("MOSTLY_")
    except Exception:  # noqa: BLE001 - the quantisation label is informative only
        pass
    return "gguf"


def _save_dequantized(model: Any, folder: Path) -> None:
    """Write a GGUF-loaded (already de-quantised, fp32) model as a plain HF folder.

    transformers marks such a model as "quantized with gguf" and refuses `save_pretrained`; the
    weights are ordinary tensors, so we write them with safetensors and drop the quantization entry.
    """
    import copy

    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _load_gguf(ref: ModelRef, identity: str, dtype: Any, trust_remote_code: bool,
               load_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _gguf_cache(ref, identity)
    if load_kwargs and not (cached / "config.json").is_file():
        _load_gguf(ref, identity, dtype, trust_remote_code)  # convert once, then load the folder with kwargs
    if (cached / "config.json").is_file() and (cached / "tokenizer_config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype, trust_remote_code=False, **(load_kwargs or {}))
        tokenizer = AutoTokenizer.from_pretrained(cached, trust_remote_code=False)
        return model, tokenizer, (cached / "format.txt").read_text().strip()
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise UserError(f"--model {ref.spec}: reading .gguf files needs `pip install 'beyondscale[gguf]'`") from None
    log.info("converting %s (first use; cached in %s)", ref.location, cached)
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.folder, gguf_file=ref.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(ref.folder, gguf_file=ref.gguf_file, dtype=torch.float32)
    except Exception as err:  # noqa: BLE001
        raise UserError(f"{ref.location}: transformers cannot load this GGUF file ({str(err).splitlines()[0]})") from None
    weights_format = _gguf_file_type(Path(ref.location))
    tmp = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _save_dequantized(model, tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "format.txt").write_text(weights_format)
    shutil.rmtree(cached, ignore_errors=True)
    tmp.rename(cached)
    if dtype not in (torch.float32, "auto"):
        model = model.to(dtype)
    return model, tokenizer, weights_format


def preload_libraries() -> None:
    """Import the code every model's loading shares (transformers' model, generation and cache modules,
    torchao), so a memory baseline taken after this call counts a model's weights and activations, not
    ~150 MB of library code that only the first model loaded in a process would otherwise be charged."""
    from beyondscale.models.quantize import preload

    preload()
    with quiet_loading():
        import transformers.cache_utils  # noqa: F401
        import transformers.generation.utils  # noqa: F401
        import transformers.masking_utils  # noqa: F401
        import transformers.modeling_utils  # noqa: F401


def load_model(
    ref: ModelRef,
    *,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    identity: str | None = None,
    quantize: str | None = None,
) -> LoadedModel:
    """Load a model for evaluation (eval mode, on `device`), quantise it if asked, and compute its facts.

    Sizes and FLOPs are counted on the float model (the architecture); the facts then carry the
    quantisation applied and the bytes the weights take in memory after it."""
    from beyondscale.models.quantize import (
        bitsandbytes_config,
        bytes_in_memory,
        plan_quantization,
        preload,
        quantize_model,
        release_float_weights,
    )

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    plan = plan_quantization(quantize, device)
    preload()
    identity = identity or ref.identity()
    load_kwargs = {"quantization_config": bitsandbytes_config(plan), "device_map": device} \
        if plan is not None and plan.backend == "bitsandbytes" else {}
    start = time.perf_counter()
    with quiet_loading():
        model, tokenizer, weights_format = _load(ref, identity, torch_dtype, trust_remote_code, load_kwargs)
    model.eval()
    if not load_kwargs:
        model.to(device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    files = ref.weight_files()
    facts = compute_facts(
        model,
        bytes_on_disk=sum(p.stat().st_size for p in files),
        weights_format=weights_format,
        lab_record=ref.lab_record(),
        tokenizer=tokenizer,
    )
    if plan is not None:
        model = quantize_model(model, plan)
        if plan.backend != "bitsandbytes":  # bitsandbytes quantised while loading: no float copy to release
            release_float_weights(model)
        facts.quantization = "+".join(q for q in (facts.quantization, plan.label) if q)
    facts.bytes_in_memory = bytes_in_memory(model)
    return LoadedModel(ref, model, tokenizer, facts, device, time.perf_counter() - start)


def _load(ref: ModelRef, identity: str, torch_dtype: Any, trust_remote_code: bool,
          load_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    """(model, tokenizer, weights format) from a GGUF file, a local folder or the hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if ref.kind == "gguf":
        return _load_gguf(ref, identity, torch_dtype, trust_remote_code, load_kwargs)
    weights_format = check_weights(ref) if ref.kind == "folder" else "hub"
    revision = ref.revision
    if ref.kind == "hub":  # load the very commit the identity names, even if the branch moves meanwhile
        from beyondscale.models.hub import resolve_commit

        revision = resolve_commit(ref.location, ref.revision, ref.spec)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "revision": revision, **(load_kwargs or {})}
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(ref.location, dtype=torch_dtype, **kwargs)
    except UserError:
        raise
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = "hub model (offline, or no such repository?)" if ref.kind == "hub" else "model folder"
        raise UserError(f"--model {ref.spec}: cannot load {where}: {first[:200]}") from None
    return model, tokenizer, weights_format


def describe_ref(ref: ModelRef) -> str:
    return json.dumps(ref.to_dict(), sort_keys=True)
