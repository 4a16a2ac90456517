"""Measurement: time, memory, energy (measured or labelled estimate), carbon, money, FLOP utilisation.

See docs/ARCHITECTURE.md (`beyondscale.measure`). Import cost is small: torch is only imported by the
probe, the benchmark and GPU paths.
"""

from beyondscale.measure.carbon import GridIntensity, grams_co2e, grid_intensity, known_regions
from beyondscale.measure.cost import CostConfig, Price, default_price
from beyondscale.measure.derive import derive
from beyondscale.measure.energy import (
    CombinedReader,
    EnergyReader,
    NvmlReader,
    RaplReader,
    TdpEstimateReader,
    Usage,
    auto_reader,
    register_reader,
)
from beyondscale.measure.environment import environment, environment_key
from beyondscale.measure.flops import PeakFlops, peak_flops, probe_matmul, spec_flops
from beyondscale.measure.genbench import bench_generation, synthetic_prompt
from beyondscale.measure.meter import MeasureBlock, Measurement, Meter

__all__ = [
    "CombinedReader",
    "CostConfig",
    "EnergyReader",
    "GridIntensity",
    "MeasureBlock",
    "Measurement",
    "Meter",
    "NvmlReader",
    "PeakFlops",
    "Price",
    "RaplReader",
    "TdpEstimateReader",
    "Usage",
    "auto_reader",
    "bench_generation",
    "default_price",
    "derive",
    "environment",
    "environment_key",
    "grams_co2e",
    "grid_intensity",
    "known_regions",
    "peak_flops",
    "probe_matmul",
    "register_reader",
    "spec_flops",
    "synthetic_prompt",
]
