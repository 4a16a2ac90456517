"""What machine a measurement ran on: CPU, cores, GPU, library versions, OS.

Every figure in a report is only comparable with figures from the same environment, so the store keys
measurements (and the peak-FLOP/s cache) by `environment_key`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from typing import Any


def cpu_model() -> str:
    """The CPU brand string ("AMD EPYC 7763 64-Core Processor"); "" when it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or ""


def logical_cpus() -> int:
    """Logical CPUs this process may run on (affinity-aware, so containers and taskset count right)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def physical_cpus() -> int | None:
    """Physical cores of the host, or None when psutil cannot tell."""
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001 - optional information
        return None


def total_memory_bytes() -> int | None:
    """Installed RAM in bytes, or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001
        return None


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:  # noqa: BLE001
        return None


def gpu_info() -> list[dict[str, Any]]:
    """Name and memory of each visible CUDA device, plus the driver version when NVML is importable."""
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch  # noqa: F811
        except ImportError:
            return []
    if not torch.cuda.is_available():
        return []
    driver = None
    try:
        import pynvml

        pynvml.nvmlInit()
        d = pynvml.nvmlSystemGetDriverVersion()
        driver = d.decode() if isinstance(d, bytes) else str(d)
    except Exception:  # noqa: BLE001 - driver version is optional
        driver = None
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append(
            {
                "index": i,
                "name": props.name,
                "memory_bytes": int(props.total_memory),
                "capability": f"{props.major}.{props.minor}",
                "driver": driver,
            }
        )
    return gpus


@functools.cache
def environment() -> dict[str, Any]:
    """Facts about this machine and software stack, with a stable `environment_key` (cached per process)."""
    torch = sys.modules.get("torch")
    threads = None
    if torch is None:
        try:
            import torch  # noqa: F811
        except ImportError:
            torch = None
    if torch is not None:
        threads = torch.get_num_threads()
    gpus = gpu_info()
    env: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cpus": logical_cpus(),
        "physical_cpus": physical_cpus(),
        "memory_bytes": total_memory_bytes(),
        "torch_threads": threads,
        "gpus": gpus,
        "gpu_name": gpus[0]["name"] if gpus else None,
        "gpu_count": len(gpus),
        "gpu_driver": gpus[0]["driver"] if gpus else None,
        "cuda_version": getattr(getattr(torch, "version", None), "cuda", None) if torch else None,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "beyondscale": _version("beyondscale"),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
    }
    env["environment_key"] = environment_key(env)
    return env


def environment_key(env: dict[str, Any]) -> str:
    """16-hex-digit hash of the facts that change performance (hardware, torch), not of volatile ones."""
    stable = {
        k: env.get(k)
        for k in ("cpu_model", "logical_cpus", "physical_cpus", "machine", "torch", "gpu_count")
    }
    stable["gpus"] = [g.get("name") for g in env.get("gpus") or []]
    blob = json.dumps(stable, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
