"""The Meter: wall time, CPU time, peak memory and energy of a block of work, plus its token counts.

    meter = Meter(device="cpu")
    with meter.measure() as m:
        results = engine.run_batch(batch)
        m.add_tokens(tokens_in, tokens_out)
    m.result  # Measurement

Counters are read at enter and exit (getrusage, perf_counter, the energy reader's counters); the
peak memory of the block comes from the kernel's resettable high-water mark on Linux, else from a
sampler thread (measure/memory.py). Peaks are reported ABOVE the baseline taken when the Meter was
built or `reset_baseline()` was called (before the model loads): the model's own weights count,
whatever happened earlier in the process (a GGUF conversion, another model) does not. On GPU the
allocator's peak statistics are reset at each block and reported above the baseline allocation.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from types import TracebackType
from typing import Any

from beyondscale.errors import UserError
from beyondscale.measure.energy import EnergyReader, TdpEstimateReader, Usage, auto_reader, reader_scope
from beyondscale.measure.memory import KernelPeak, SampledPeak, current_rss

try:
    import resource

    def _cpu_seconds() -> float:
        """Process CPU seconds (user + system)."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

except ImportError:  # Windows

    def _cpu_seconds() -> float:
        import psutil

        t = psutil.Process().cpu_times()
        return t.user + t.system


log = logging.getLogger(__name__)

#: The wall clock; a module global so tests can replace it.
_clock = time.perf_counter


@dataclass
class Measurement:
    """What one measured block (or a sum of blocks) cost. Peaks take the max when added; the rest sums.

    `energy_source` says how `energy_j` was obtained (`rapl`, `nvml`, `estimate:tdp`, or several
    joined by '+'); `energy_estimated` is True when any part of it is an estimate.
    """

    wall_s: float = 0.0
    cpu_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    peak_rss_bytes: int = 0
    peak_gpu_bytes: int | None = None
    peak_gpu_reserved_bytes: int | None = None
    energy_j: float | None = None
    energy_source: str = "none"
    energy_estimated: bool = True
    energy_scope: str = "process"  # "whole-machine" (RAPL) / "whole-gpu" (NVML) include other processes
    device: str = "cpu"
    hardware: str = ""
    hardware_units: int = 1
    count: int = 1
    model_flops: float | None = None

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def __add__(self, other: Measurement) -> Measurement:
        if not isinstance(other, Measurement):
            return NotImplemented
        return Measurement(
            wall_s=self.wall_s + other.wall_s,
            cpu_s=self.cpu_s + other.cpu_s,
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            peak_rss_bytes=max(self.peak_rss_bytes, other.peak_rss_bytes),
            peak_gpu_bytes=_max_opt(self.peak_gpu_bytes, other.peak_gpu_bytes),
            peak_gpu_reserved_bytes=_max_opt(self.peak_gpu_reserved_bytes, other.peak_gpu_reserved_bytes),
            energy_j=None if self.energy_j is None or other.energy_j is None else self.energy_j + other.energy_j,
            energy_source=_merge_label(self.energy_source, other.energy_source, sep="+"),
            energy_estimated=self.energy_estimated or other.energy_estimated,
            energy_scope=_merge_label(self.energy_scope, other.energy_scope, sep="+"),
            device=_merge_label(self.device, other.device, sep=","),
            hardware=_merge_label(self.hardware, other.hardware, sep=","),
            hardware_units=max(self.hardware_units, other.hardware_units),
            count=self.count + other.count,
            model_flops=_sum_opt(self.model_flops, other.model_flops),
        )

    def __radd__(self, other: Any) -> Measurement:
        if other == 0:  # so that sum(measurements) works
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict for the store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        """Inverse of `to_dict`; unknown keys are ignored so older/newer rows still load."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _max_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _sum_opt(a: float | None, b: float | None) -> float | None:
    """Sum of model FLOPs; a block that did not count them (None) makes the total unknown."""
    return None if a is None or b is None else a + b


def _merge_label(a: str, b: str, *, sep: str) -> str:
    if a == b:
        return a
    parts: list[str] = []
    for label in (a, b):
        for p in label.split(sep):
            if p and p not in parts:
                parts.append(p)
    return sep.join(parts)


def check_positive(value: Any, flag: str, *, allow_zero: bool = False) -> float:
    """Parse a user number; a non-number, NaN or negative value raises UserError naming `flag`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{flag} must be a number, got {value!r}") from None
    if math.isnan(x) or math.isinf(x) or x < 0 or (x == 0 and not allow_zero):
        need = "a non-negative" if allow_zero else "a positive"
        raise UserError(f"{flag} must be {need} number, got {value!r}")
    return x


class Meter:
    """Measures blocks of work on one device; see the module docstring.

    `reader` defaults to the best available (`auto_reader`): RAPL / NVML counters when readable, else
    the labelled `estimate:tdp`. `cpu_watts` (whole-machine CPU power at full load) forces the
    estimate with that figure instead of the TDP table.
    """

    def __init__(
        self,
        reader: EnergyReader | None = None,
        device: str = "cpu",
        cpu_watts: float | None = None,
        *,
        hardware: str | None = None,
        hardware_units: int | None = None,
    ) -> None:
        if cpu_watts is not None:
            cpu_watts = check_positive(cpu_watts, "--cpu-watts")
        self.device = str(device)
        self.cpu_watts = cpu_watts
        self.reader: EnergyReader = reader if reader is not None else auto_reader(self.device, cpu_watts)
        self._cuda = None
        if self.device.startswith("cuda"):
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():
                self._cuda = torch.cuda
        if hardware is None or hardware_units is None:
            hw, units = _hardware(self.device)
            hardware = hw if hardware is None else hardware
            hardware_units = units if hardware_units is None else hardware_units
        self.hardware = hardware
        self.hardware_units = hardware_units
        self.total: Measurement | None = None
        self._memory = KernelPeak if KernelPeak.available() else SampledPeak
        self.reset_baseline()

    def reset_baseline(self) -> None:
        """Record the memory in use now; block peaks are reported above it (call before loading a model)."""
        self.baseline_rss_bytes = current_rss()
        cuda = self._cuda
        self.baseline_gpu_bytes = int(cuda.memory_allocated(self.device)) if cuda is not None else 0
        self.baseline_gpu_reserved_bytes = int(cuda.memory_reserved(self.device)) if cuda is not None else 0

    @property
    def energy_source(self) -> str:
        return self.reader.name

    def measure(self) -> MeasureBlock:
        """A context manager measuring the enclosed block; its `.result` is set on exit."""
        return MeasureBlock(self)

    def _fallback(self, err: Exception) -> EnergyReader:
        log.warning(
            "energy reader %r failed (%s); using estimate:tdp from now on", self.reader.name, err
        )
        self.reader = TdpEstimateReader(self.cpu_watts)
        return self.reader


def _hardware(device: str) -> tuple[str, int]:
    from beyondscale.measure.environment import cpu_model, logical_cpus

    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            idx = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
            return torch.cuda.get_device_name(idx), 1
        return "cuda", 1
    return cpu_model() or "cpu", logical_cpus()


class MeasureBlock:
    """One measured block; use via `Meter.measure()`."""

    __slots__ = ("meter", "tokens_in", "tokens_out", "flops", "result", "_t0", "_cpu0", "_state", "_reader",
                 "_memory")

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.tokens_in = 0
        self.tokens_out = 0
        self.flops: float | None = None
        self.result: Measurement | None = None

    def add_tokens(self, tokens_in: int, tokens_out: int = 0) -> None:
        """Count tokens processed in this block (prompt/context tokens in, generated tokens out)."""
        self.tokens_in += int(tokens_in)
        self.tokens_out += int(tokens_out)

    def add_flops(self, flops: float) -> None:
        """Count model FLOPs actually computed in this block (MFU uses them instead of a nominal context)."""
        self.flops = (self.flops or 0.0) + float(flops)

    def __enter__(self) -> MeasureBlock:
        cuda = self.meter._cuda
        dev = self.meter.device
        if cuda is not None:
            cuda.synchronize(dev)
            cuda.reset_peak_memory_stats(dev)
        self._reader = self.meter.reader
        try:
            self._state = self._reader.start()
        except Exception as err:  # noqa: BLE001 - never lose the measurement over an energy counter
            self._reader = self.meter._fallback(err)
            self._state = self._reader.start()
        self._memory = self.meter._memory()
        self._memory.start()
        self._cpu0 = _cpu_seconds()
        self._t0 = _clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        meter = self.meter
        cuda = meter._cuda
        if cuda is not None:
            cuda.synchronize(meter.device)
        wall = _clock() - self._t0
        cpu_s = max(0.0, _cpu_seconds() - self._cpu0)
        rss = self._memory.stop()  # the process's peak during the block
        usage = Usage(wall_s=wall, cpu_s=cpu_s, peak_rss_bytes=rss)
        reader = self._reader
        try:
            energy = float(reader.stop(self._state, usage))
        except Exception as err:  # noqa: BLE001
            reader = meter._fallback(err)
            energy = float(reader.stop(reader.start(), usage))
        gpu_peak = gpu_reserved = None
        if cuda is not None:
            gpu_peak = max(0, int(cuda.max_memory_allocated(meter.device)) - meter.baseline_gpu_bytes)
            gpu_reserved = max(0, int(cuda.max_memory_reserved(meter.device)) - meter.baseline_gpu_reserved_bytes)
        self.result = Measurement(
            wall_s=wall,
            cpu_s=usage.cpu_s,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            peak_rss_bytes=max(0, rss - meter.baseline_rss_bytes),
            peak_gpu_bytes=gpu_peak,
            peak_gpu_reserved_bytes=gpu_reserved,
            energy_j=energy,
            energy_source=reader.name,
            energy_estimated=bool(reader.estimated),
            energy_scope=reader_scope(reader),
            device=meter.device,
            hardware=meter.hardware,
            hardware_units=meter.hardware_units,
            model_flops=self.flops,
        )
        meter.total = self.result if meter.total is None else meter.total + self.result
