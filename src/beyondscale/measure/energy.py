"""Energy readers: measured counters (RAPL, NVML) and a labelled TDP estimate.

A reader has a `name` (what lands in `energy_source`), says whether its figure is `estimated`, and is
used as ``state = reader.start(); ...; joules = reader.stop(state, usage)``. Counter readers ignore
`usage`; the estimate needs nothing but it. New readers (Apple powermetrics, AMD SMI, ...) are added
with `register_reader` and never require touching the Meter.

Why start/stop and not a background sampler: the counters are cumulative, so two reads per batch are
exact and cost microseconds; a sampler thread would cost CPU on the very cores being measured.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from beyondscale.measure._tables import load_table, longest_match, opt_float
from beyondscale.measure.environment import cpu_model, logical_cpus

log = logging.getLogger(__name__)

#: CodeCarbon's RAM power model: 3 W per 8 GB, i.e. 0.375 W per GB
#: (https://mlco2.github.io/codecarbon/methodology.html#ram).
RAM_WATTS_PER_GB = 0.375

#: Fallback for a CPU model that is not in data/cpu_tdp.csv: CodeCarbon's 85 W default TDP, spread
#: over an assumed 16 logical CPUs (8 cores / 16 threads).
DEFAULT_CPU_TDP_W = 85.0
DEFAULT_CPU_THREADS = 16


@dataclass(frozen=True)
class Usage:
    """What the Meter measured for one block; the estimate reader turns it into joules."""

    wall_s: float
    cpu_s: float
    peak_rss_bytes: int


@runtime_checkable
class EnergyReader(Protocol):
    """One source of joules for a measured block."""

    name: str
    estimated: bool

    def available(self) -> bool:
        """Whether this reader can produce figures on this machine (cheap; may read once)."""
        ...

    def start(self) -> Any:
        """Take the opening reading; the returned state goes back into `stop`."""
        ...

    def stop(self, state: Any, usage: Usage) -> float:
        """Joules consumed since `start`."""
        ...


class CounterReader:
    """Base for cumulative counters: subclasses implement `read_joules()` (a monotonic total)."""

    name = "counter"
    estimated = False

    def read_joules(self) -> float:
        raise NotImplementedError

    def available(self) -> bool:
        try:
            self.read_joules()
            return True
        except Exception as err:  # noqa: BLE001 - any failure means "not usable here"
            log.debug("%s energy reader unavailable: %s", self.name, err)
            return False

    def start(self) -> Any:
        return self.read_joules()

    def stop(self, state: Any, usage: Usage) -> float:
        return self.read_joules() - float(state)


# ----------------------------------------------------------------------------------------------- RAPL

_ZONE_RE = re.compile(r"^(?P<ctl>[a-z0-9-]*rapl[a-z0-9-]*):(?P<idx>\d+(?::\d+)*)$")
#: Preferred control types: the MSR interface first; intel-rapl-mmio exposes the same package counters
#: through MMIO, so it is only used when the MSR zones are missing (never both: that would double count).
_CTL_ORDER = ("intel-rapl", "amd-rapl", "intel-rapl-mmio")


@dataclass(frozen=True)
class RaplDomain:
    """One counter we sum: a package (top-level) or a DRAM zone."""

    path: Path
    name: str
    max_range_uj: int


class RaplReader:
    """Linux powercap RAPL (Intel, and AMD Zen via the same driver): package + DRAM domains.

    Subzones `core`/`uncore` are inside the package figure and `psys` contains it, so they are skipped
    (psys is used only if there is no package zone). Counters wrap at `max_energy_range_uj`.
    """

    name = "rapl"
    estimated = False
    scope = "whole-machine"  # packages + DRAM: every process on the machine

    def __init__(self, root: str | os.PathLike[str] = "/sys/class/powercap") -> None:
        self.root = Path(root)
        self._domains: list[RaplDomain] | None = None

    def domains(self) -> list[RaplDomain]:
        """The zones to sum, discovered once."""
        if self._domains is None:
            self._domains = self._discover()
        return self._domains

    def _discover(self) -> list[RaplDomain]:
        if not self.root.is_dir():
            return []
        by_ctl: dict[str, list[tuple[str, Path, str]]] = {}
        for entry in sorted(self.root.iterdir()):
            m = _ZONE_RE.match(entry.name)
            if not m or not (entry / "energy_uj").exists():
                continue
            try:
                zname = (entry / "name").read_text().strip().lower()
            except OSError:
                zname = ""
            by_ctl.setdefault(m["ctl"], []).append((m["idx"], entry, zname))
        ctls = [c for c in _CTL_ORDER if c in by_ctl] + sorted(c for c in by_ctl if c not in _CTL_ORDER)
        for ctl in ctls:
            picked: list[tuple[Path, str]] = []
            zones = by_ctl[ctl]
            packages = [(p, n) for idx, p, n in zones if ":" not in idx and n.startswith("package")]
            dram = [(p, n) for _idx, p, n in zones if n == "dram"]
            if packages:
                picked = packages + dram
            else:
                psys = [(p, n) for idx, p, n in zones if ":" not in idx and n == "psys"]
                picked = psys or dram
            if picked:
                out = []
                for path, zname in picked:
                    try:
                        max_range = int((path / "max_energy_range_uj").read_text().strip())
                    except (OSError, ValueError):
                        max_range = 0
                    out.append(RaplDomain(path / "energy_uj", zname, max_range))
                return out
        return []

    def _read_raw(self) -> list[int]:
        return [int(d.path.read_text().strip()) for d in self.domains()]

    def available(self) -> bool:
        doms = self.domains()
        if not doms:
            return False
        try:
            self._read_raw()
            return True
        except (OSError, ValueError) as err:
            log.warning(
                "RAPL counters exist under %s but cannot be read (%s); energy falls back to the next "
                "reader. On Linux >= 5.10 energy_uj is root-only: `sudo chmod o+r %s/*/energy_uj`.",
                self.root, err, self.root,
            )
            return False

    def start(self) -> list[int]:
        return self._read_raw()

    def stop(self, state: list[int], usage: Usage) -> float:
        end = self._read_raw()
        total_uj = 0
        for dom, a, b in zip(self.domains(), state, end, strict=True):
            delta = b - a
            if delta < 0:  # the counter wrapped once (it wraps every few minutes to hours)
                delta += dom.max_range_uj
            total_uj += delta
        return total_uj / 1e6


# ----------------------------------------------------------------------------------------------- NVML


class NvmlReader(CounterReader):
    """NVIDIA GPUs via NVML's total-energy counter (mJ since driver load, Volta and newer).

    `gpu_indices` are NVML indices; by default the CUDA devices visible to this process (by UUID, so
    CUDA_VISIBLE_DEVICES is honoured).
    """

    name = "nvml"
    estimated = False
    scope = "whole-gpu"  # the board's counter: every process on those GPUs

    def __init__(self, gpu_indices: Sequence[int] | None = None) -> None:
        self.gpu_indices = list(gpu_indices) if gpu_indices is not None else None
        self._handles: list[Any] | None = None
        self._nvml: Any = None

    def _init(self) -> list[Any]:
        if self._handles is None:
            import pynvml  # lazy: nvidia-ml-py is optional

            pynvml.nvmlInit()
            self._nvml = pynvml
            if self.gpu_indices is not None:
                handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in self.gpu_indices]
            else:
                handles = self._visible_handles(pynvml)
            if not handles:
                raise RuntimeError("no NVIDIA GPU visible to NVML")
            self._handles = handles
        return self._handles

    @staticmethod
    def _visible_handles(pynvml: Any) -> list[Any]:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            handles = []
            for i in range(torch.cuda.device_count()):
                uuid = getattr(torch.cuda.get_device_properties(i), "uuid", None)
                if uuid is None:
                    handles.append(pynvml.nvmlDeviceGetHandleByIndex(i))
                    continue
                u = str(uuid)
                handles.append(pynvml.nvmlDeviceGetHandleByUUID(u if u.startswith("GPU-") else f"GPU-{u}"))
            return handles
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]

    def read_joules(self) -> float:
        handles = self._init()
        return sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles) / 1e3

    def available(self) -> bool:
        try:
            self.read_joules()
            return True
        except ImportError:
            log.debug("pynvml (nvidia-ml-py) not installed: NVML energy unavailable")
            return False
        except Exception as err:  # noqa: BLE001
            log.warning("NVML energy counters unreadable (%s); falling back to the next reader", err)
            return False


# ----------------------------------------------------------------------------------- TDP estimate


@dataclass(frozen=True)
class CpuPower:
    """Watts per logical CPU at full load, and where the figure came from."""

    watts_per_logical_cpu: float
    source: str


def cpu_power(brand: str | None = None, cpu_watts: float | None = None, n_logical: int | None = None) -> CpuPower:
    """Resolve watts per logical CPU: user `cpu_watts` (whole machine) > table > CodeCarbon default."""
    n = n_logical or logical_cpus()
    if cpu_watts is not None:
        return CpuPower(float(cpu_watts) / n, f"user:cpu_watts={cpu_watts:g}W/{n} logical CPUs")
    brand = cpu_model() if brand is None else brand
    row = longest_match(brand, load_table("cpu_tdp.csv")) if brand else None
    if row is not None:
        tdp, threads = float(row["tdp_w"]), int(row["threads"])
        return CpuPower(tdp / threads, f"table:{row['pattern']} {tdp:g}W/{threads} threads")
    return CpuPower(
        DEFAULT_CPU_TDP_W / DEFAULT_CPU_THREADS,
        f"default:{DEFAULT_CPU_TDP_W:g}W/{DEFAULT_CPU_THREADS} threads (unknown CPU {brand!r})",
    )


def gpu_tdp_watts(name: str) -> float | None:
    """Board power of a known GPU (data/gpu_specs.csv), or None."""
    row = longest_match(name, load_table("gpu_specs.csv"))
    return opt_float(row["tdp_w"]) if row else None


class TdpEstimateReader:
    """`estimate:tdp`: CPU-seconds x watts per logical CPU + RAM watts x peak RSS x wall time.

    Process CPU time already equals utilisation x logical CPUs x wall time, so
    E_cpu = (cpu_s / wall_s / n_logical) x (W_per_logical x n_logical) x wall_s = cpu_s x W_per_logical.
    `gpu_watts` (board power of the GPUs in use, when NVML is missing) adds gpu_watts x wall_s, an upper
    bound. Always labelled estimated.
    """

    name = "estimate:tdp"
    estimated = True
    scope = "process"  # this process's CPU time (plus GPU board power when gpu_watts is given)

    def __init__(
        self,
        cpu_watts: float | None = None,
        *,
        brand: str | None = None,
        n_logical: int | None = None,
        ram_watts_per_gb: float = RAM_WATTS_PER_GB,
        gpu_watts: float | None = None,
    ) -> None:
        self.power = cpu_power(brand, cpu_watts, n_logical)
        self.ram_watts_per_gb = ram_watts_per_gb
        self.gpu_watts = gpu_watts

    @property
    def source_detail(self) -> str:
        return self.power.source

    def available(self) -> bool:
        return True

    def start(self) -> None:
        return None

    def stop(self, state: Any, usage: Usage) -> float:
        cpu_j = usage.cpu_s * self.power.watts_per_logical_cpu
        ram_j = self.ram_watts_per_gb * (usage.peak_rss_bytes / 1e9) * usage.wall_s
        gpu_j = (self.gpu_watts or 0.0) * usage.wall_s
        return cpu_j + ram_j + gpu_j


# ------------------------------------------------------------------------------------ composition


def reader_scope(reader: Any) -> str:
    """What a reader's joules cover: "process", "whole-machine" (RAPL) or "whole-gpu" (NVML)."""
    return str(getattr(reader, "scope", "unknown"))


class CombinedReader:
    """Sum of several readers (e.g. RAPL for the CPU + NVML for the GPUs); estimated if any part is."""

    def __init__(self, readers: Sequence[EnergyReader]) -> None:
        self.readers = list(readers)
        self.name = "+".join(r.name for r in self.readers)
        self.estimated = any(r.estimated for r in self.readers)
        self.scope = "+".join(reader_scope(r) for r in self.readers)

    def available(self) -> bool:
        return all(r.available() for r in self.readers)

    def start(self) -> list[Any]:
        return [r.start() for r in self.readers]

    def stop(self, state: list[Any], usage: Usage) -> float:
        return sum(r.stop(s, usage) for r, s in zip(self.readers, state, strict=True))


#: (name, role, factory) in the order tried. role "cpu" readers measure the host, "gpu" the accelerators.
_REGISTRY: list[tuple[str, str, Callable[[], EnergyReader]]] = [
    ("rapl", "cpu", RaplReader),
    ("nvml", "gpu", NvmlReader),
]


def register_reader(name: str, role: str, factory: Callable[[], EnergyReader], *, first: bool = True) -> None:
    """Add a measured reader (role "cpu" or "gpu"); `first` puts it ahead of the built-ins."""
    if role not in ("cpu", "gpu"):
        raise ValueError("role must be 'cpu' or 'gpu'")
    entry = (name, role, factory)
    if first:
        _REGISTRY.insert(0, entry)
    else:
        _REGISTRY.append(entry)


def auto_reader(device: str = "cpu", cpu_watts: float | None = None) -> EnergyReader:
    """The best reader for `device`: measured CPU counter (+ measured GPU counter), else the estimate.

    A part that cannot be measured is estimated and the whole figure is labelled estimated, so an
    estimate never passes for a measurement. Unreadable counters log a warning (never a silent zero).
    """
    uses_gpu = device.startswith("cuda")
    cpu_part: EnergyReader | None = None
    gpu_part: EnergyReader | None = None
    for _name, role, factory in _REGISTRY:
        if role == "cpu" and cpu_part is None and cpu_watts is None:
            r = factory()
            if r.available():
                cpu_part = r
        elif role == "gpu" and uses_gpu and gpu_part is None:
            r = factory()
            if r.available():
                gpu_part = r
    gpu_watts = None
    if uses_gpu and gpu_part is None:
        gpu_watts = _visible_gpu_tdp()
        _warn_once(_no_gpu_counter_line(gpu_watts))
    if cpu_part is None:
        cpu_part = TdpEstimateReader(cpu_watts, gpu_watts=gpu_watts)
        why = "from --cpu-watts" if cpu_watts is not None else "no readable CPU energy counter"
        log.info("CPU energy is estimated (estimate:tdp, %s): %s", cpu_part.source_detail, why)
    elif gpu_watts is not None:
        gpu_part = TdpEstimateReader(0.0, gpu_watts=gpu_watts, ram_watts_per_gb=0.0)
    parts = [p for p in (cpu_part, gpu_part) if p is not None]
    return parts[0] if len(parts) == 1 else CombinedReader(parts)


#: Warnings already given in this process: a CUDA run builds a Meter per model, the advice is needed once.
_warned: set[str] = set()

GPU_EXTRA = "pip install 'beyondscale[gpu]'"


def _warn_once(line: str) -> None:
    if line not in _warned:
        _warned.add(line)
        log.warning(line)


def _nvml_installed() -> bool:
    try:
        import pynvml  # noqa: F401 - only asking whether nvidia-ml-py is there
    except ImportError:
        return False
    return True


def _no_gpu_counter_line(gpu_watts: float | None) -> str:
    """One line: why GPU energy is not measured (nvidia-ml-py missing, or NVML unreadable) and what it is instead."""
    what = ("GPU energy is NOT included (this GPU is not in data/gpu_specs.csv)" if gpu_watts is None
            else f"GPU energy is estimated as board power x wall time ({gpu_watts:g} W)")
    if not _nvml_installed():
        return f"energy is estimated, not measured: `nvidia-ml-py` is missing ({GPU_EXTRA}); {what}"
    return f"energy is estimated, not measured: NVML energy counters are unreadable; {what}"


def _visible_gpu_tdp() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    total = 0.0
    for i in range(torch.cuda.device_count()):
        w = gpu_tdp_watts(torch.cuda.get_device_name(i))
        if w is None:
            return None
        total += w
    return total
