"""Peak FLOP/s: a short matmul probe (cached per machine) and NVIDIA's spec sheet figures.

MFU = achieved FLOP/s / peak FLOP/s. Against the vendor peak it is the usual (PaLM) definition; on a
CPU there is no trustworthy vendor figure, so the probe (what torch.matmul actually reaches here) is
the peak. Both are kept and the one used is named in `source`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from beyondscale.measure._tables import load_table, longest_match, opt_float

log = logging.getLogger(__name__)

_SPEC_COLUMN = {"float32": "fp32_tflops", "tf32": "tf32_tflops", "bfloat16": "bf16_tflops", "float16": "fp16_tflops"}


def cache_dir() -> Path:
    """Where per-machine results are cached: $BEYONDSCALE_CACHE, else ~/.cache/beyondscale."""
    env = os.environ.get("BEYONDSCALE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "beyondscale"


@dataclass(frozen=True)
class PeakFlops:
    """Peak FLOP/s for one device and dtype: probe and spec figures, and which one `value` is."""

    device: str
    dtype: str
    probe_flops: float | None
    spec_flops: float | None
    spec_name: str | None = None
    probe_detail: str = ""

    @property
    def value(self) -> float | None:
        """The peak MFU is computed against: the vendor spec when known, else the probe."""
        return self.spec_flops if self.spec_flops else self.probe_flops

    @property
    def source(self) -> str:
        if self.spec_flops:
            return f"spec:{self.spec_name} {self.dtype} dense"
        if self.probe_flops:
            return f"probe:matmul {self.dtype} on {self.device} ({self.probe_detail})"
        return "unknown"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(value=self.value, source=self.source)
        return d


def spec_flops(gpu_name: str, dtype: str = "bfloat16") -> tuple[float, str] | None:
    """Vendor dense peak (FLOP/s) for a known GPU and dtype, with the table's name; None if unknown."""
    row = longest_match(gpu_name, load_table("gpu_specs.csv"))
    if row is None:
        return None
    tflops = opt_float(row.get(_SPEC_COLUMN.get(dtype, ""), None))
    return (tflops * 1e12, row["name"]) if tflops else None


def probe_matmul(device: str = "cpu", dtype: str = "float32", seconds: float = 2.0, n: int | None = None) -> tuple[float, str]:
    """Best FLOP/s of repeated n x n matmuls over about `seconds` (after one warm-up); (flops, detail)."""
    import torch

    tdtype = getattr(torch, dtype)
    if n is None:
        n = 4096 if device.startswith("cuda") else 1024
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen, dtype=torch.float32).to(device=device, dtype=tdtype)
    b = torch.randn(n, n, generator=gen, dtype=torch.float32).to(device=device, dtype=tdtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        torch.matmul(a, b)
        sync()
        best = 0.0
        reps = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or reps < 3:
            t0 = time.perf_counter()
            torch.matmul(a, b)
            sync()
            dt = time.perf_counter() - t0
            reps += 1
            if dt > 0:
                best = max(best, 2.0 * n**3 / dt)
    return best, f"n={n}, best of {reps}, torch threads={torch.get_num_threads()}"


def peak_flops(
    device: str = "cpu",
    dtype: str = "float32",
    *,
    cache: Path | str | None = None,
    refresh: bool = False,
    probe_seconds: float = 2.0,
    probe: bool = True,
) -> PeakFlops:
    """Peak FLOP/s for `device`/`dtype`: vendor spec (GPUs in the table) and a probe cached per machine.

    The probe runs once per (environment_key, device, dtype) and is stored as JSON in `cache`
    (default `cache_dir()`/peak_flops.json); `refresh=True` re-runs it.
    """
    from beyondscale.measure.environment import environment

    env = environment()
    gpu_name = None
    if device.startswith("cuda"):
        import torch

        idx = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        gpu_name = torch.cuda.get_device_name(idx)
    spec = spec_flops(gpu_name, dtype) if gpu_name else None
    path = Path(cache) if cache is not None else cache_dir() / "peak_flops.json"
    key = f"{env['environment_key']}|{device}|{dtype}"
    store: dict[str, Any] = {}
    if path.exists():
        try:
            store = json.loads(path.read_text())
        except (OSError, ValueError):
            store = {}
    entry = store.get(key)
    if (entry is None or refresh) and probe:
        flops, detail = probe_matmul(device, dtype, probe_seconds)
        entry = {"flops": flops, "detail": detail, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        store[key] = entry
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(store, indent=1, sort_keys=True))
            tmp.replace(path)
        except OSError as err:
            log.warning("could not cache the peak FLOP/s probe in %s: %s", path, err)
    return PeakFlops(
        device=device,
        dtype=dtype,
        probe_flops=entry["flops"] if entry else None,
        spec_flops=spec[0] if spec else None,
        spec_name=spec[1] if spec else None,
        probe_detail=entry["detail"] if entry else "",
    )
