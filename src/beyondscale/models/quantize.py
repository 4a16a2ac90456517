"""Quantised variants: run a model more cheaply and keep it a model of its own in the store.

`--quantize int8|int4|none`. The backend is chosen before anything loads (so the model key can name
it): bitsandbytes on CUDA when installed; torchao (PyTorch's quantisation library) otherwise; torch's
own dynamic int8 (`torch.ao.quantization.quantize_dynamic`) when torchao is missing. What was applied
is part of the model's identity (`QuantPlan.label`), because every backend rounds differently.

On this project's CPU with torch 2.13 and torchao 0.18 (measured when this was written):
  int8 -> torchao `Int8DynamicActivationInt8WeightConfig` (int8 weights, activations quantised per token);
  int4 -> torchao `IntxWeightOnlyConfig(int4, group 32)`: int4 values, kept unpacked in int8 storage
          (torchao's packed int4 CPU kernels need the separate `mslk` package), so it saves memory only
          as int8 does and scores show the int4 rounding.
Every nn.Linear is quantised except the output head, which stays in float like the embedding lookup it is
usually tied to (bitsandbytes through transformers does the same by default): quantising it would add a
copy of the vocabulary matrix instead of saving memory, and raise every batch's peak (see `_output_head`).
After quantising, the float weights are released (`release_float_weights`).
Speed (README, alternated in one process on 2 cores): torchao int8 ran at 1.20x (SmolLM2) and 1.43x
(Gemma-3) fp32's tokens/s, torch's dynamic int8 at 1.53x and 1.74x (torchao's CPU int8 path multiplies in
int32); torchao stays the default as the maintained library, torch's is the fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from beyondscale.errors import UserError

METHODS = ("none", "int8", "int4")
INT4_GROUP = 32
FLOAT_HEAD = "-head-float"  # in the label: variants that quantised the head too were stored under other keys


@dataclass(frozen=True)
class QuantPlan:
    method: str  # int8 | int4
    backend: str  # torchao | torch | bitsandbytes

    @property
    def label(self) -> str:
        """What was applied, as stored in the facts and hashed into the model key."""
        detail = {
            ("torchao", "int8"): f"int8-dynamic-activation-int8-weight{FLOAT_HEAD}",
            ("torchao", "int4"): f"int4-weight-only-group{INT4_GROUP}{FLOAT_HEAD}",
            ("torch", "int8"): f"int8-dynamic{FLOAT_HEAD}",
            ("bitsandbytes", "int8"): "llm-int8",
            ("bitsandbytes", "int4"): "nf4",
        }[(self.backend, self.method)]
        return f"{self.backend}:{detail}"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_method(method: str | None) -> str:
    """The method, lower-cased; a UserError naming --quantize for anything else."""
    method = (method or "none").lower()
    if method not in METHODS:
        raise UserError(f"--quantize {method}: expected one of {', '.join(METHODS)}")
    return method


def plan_quantization(method: str | None, device: str) -> QuantPlan | None:
    """The backend that will quantise the model on `device`, or None for `--quantize none`."""
    method = check_method(method)
    if method == "none":
        return None
    if device.startswith("cuda") and _has("bitsandbytes"):
        return QuantPlan(method, "bitsandbytes")
    if _has("torchao"):
        return QuantPlan(method, "torchao")
    if method == "int8":
        return QuantPlan(method, "torch")
    raise UserError("--quantize int4: needs torchao (pip install torchao); torch's own dynamic quantisation is int8 only")


def bitsandbytes_config(plan: QuantPlan) -> Any:
    """transformers' BitsAndBytesConfig for a bitsandbytes plan (applied while loading, on CUDA)."""
    from transformers import BitsAndBytesConfig

    if plan.method == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)


@contextlib.contextmanager
def _quiet_torchao() -> Iterator[None]:
    """torchao logs a warning per optional GPU kernel it cannot load on import; none is used here."""
    # a filter, not a level: torch resets its loggers' levels when torch._dynamo first loads
    loggers = [logging.getLogger(name) for name in ("torchao", "torchao.kernel.intmm", "torch.utils._pytree")]
    below_error = _BelowError()
    for logger in loggers:
        logger.addFilter(below_error)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(below_error)


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def preload() -> None:
    """Import torchao quietly before transformers does: when torchao is installed, loading any model
    imports it (transformers' quantizers), and it logs a warning per optional GPU kernel it lacks."""
    if _has("torchao"):
        with _quiet_torchao():
            import torchao.quantization  # noqa: F401
            import transformers.quantizers.auto  # noqa: F401


def quantize_model(model: torch.nn.Module, plan: QuantPlan) -> torch.nn.Module:
    """Quantise a loaded float model in place (torchao, torch); bitsandbytes is applied at load time.
    A model with no nn.Linear to quantise (GPT-2's Conv1D layers) is refused: its "variant" would be fp32."""
    if plan.backend == "bitsandbytes":
        return model
    head = _output_head(model)
    if not any(isinstance(m, torch.nn.Linear) and m is not head for m in model.modules()):
        raise UserError(f"--quantize {plan.method}: {type(model).__name__} has no nn.Linear layer besides its output "
                        "head to quantise (e.g. GPT-2's Conv1D layers); evaluate it without --quantize")
    if plan.backend == "torch":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            linears = {name: torch.ao.quantization.default_dynamic_qconfig for name, m in model.named_modules()
                       if isinstance(m, torch.nn.Linear) and m is not head}
            return torch.ao.quantization.quantize_dynamic(model, linears, dtype=torch.qint8, inplace=True)
    with _quiet_torchao():
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            IntxWeightOnlyConfig,
            quantize_,
        )
        from torchao.quantization.granularity import PerGroup

        if plan.method == "int8":
            config: Any = Int8DynamicActivationInt8WeightConfig()
        else:
            config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP))
        quantize_(model, config, filter_fn=lambda m, _fqn: isinstance(m, torch.nn.Linear) and m is not head)
    return model


def release_float_weights(model: torch.nn.Module) -> None:
    """Let the float weights a quantised model no longer uses leave memory.

    transformers maps the safetensors file, and every tensor loaded from it keeps the whole mapping alive:
    the norms and the embedding that stay float would keep resident every page of the quantised-away
    float weights (quantising read them all), so the variant would hold both copies and peak above fp32.
    Giving the float tensors that remain memory of their own unmaps the file; then the allocator returns
    the freed conversion buffers to the system. A deployed variant loads its quantised weights directly,
    so the float copy is no part of serving it."""
    own: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for module in model.modules():
            for table in (module._parameters, module._buffers):
                for name, t in table.items():
                    if t is not None and type(t) in (torch.Tensor, torch.nn.Parameter) and not t.is_quantized:
                        if id(t) not in own:  # a tensor shared by two modules stays shared
                            copy = t.detach().clone()
                            own[id(t)] = torch.nn.Parameter(copy, t.requires_grad) if type(t) is torch.nn.Parameter \
                                else copy
                        table[name] = own[id(t)]
    own.clear()
    gc.collect()
    _malloc_trim()


def _malloc_trim() -> None:
    """glibc keeps freed heap pages in the process; malloc_trim returns them (a no-op elsewhere)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The output projection (vocabulary x hidden), which stays in float: usually tied to the input embedding
    (a float lookup), so quantising it would add a copy rather than save memory, and its vocabulary-wide
    int32 accumulator plus rescaled copy would raise the peak of every scored batch."""
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def _tensor_bytes(t: Any) -> tuple[list[tuple[int, int]], int]:
    """(storage keys, bytes) of a tensor, looking inside tensor subclasses (torchao) and quantised tensors."""
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None and type(t) is not torch.nn.Parameter and type(t) is not torch.Tensor:
        names, _ = t.__tensor_flatten__()
        keys, total = [], 0
        for name in names:
            k, b = _tensor_bytes(getattr(t, name))
            keys += k
            total += b
        return keys, total
    if t.is_quantized:
        return [(t.data_ptr(), t.numel())], t.numel() * t.element_size()
    return [(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())], t.untyped_storage().nbytes()


def bytes_in_memory(model: torch.nn.Module) -> int:
    """Bytes the model's weights and buffers occupy (shared storage counted once; quantised weights at
    their stored width, with their scales)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for value in [*_state_tensors(model.state_dict(keep_vars=True)), *model.buffers()]:  # + non-persistent
        keys, size = _tensor_bytes(value)
        if any(k in seen for k in keys):
            continue
        seen.update(keys)
        total += size
    return total


def _state_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Tensors in a state dict, including those packed inside tuples (torch's dynamic quantised Linear)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _state_tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _state_tensors(v)
