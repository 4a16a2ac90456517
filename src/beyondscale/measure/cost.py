"""Money and carbon settings (`CostConfig`) and default hourly prices per hardware class.

Dollars are wall time x usd_per_hour: the price of renting the machine while it did the work. When
the user gives no price, a documented default for the hardware class is used (data/prices.csv) and
labelled `estimate:price-table <class>`, so it is never mistaken for a bill.
"""

from __future__ import annotations

from dataclasses import dataclass

from beyondscale.measure._tables import load_table, longest_match
from beyondscale.measure.carbon import GridIntensity, grid_intensity
from beyondscale.measure.meter import check_positive


@dataclass(frozen=True)
class Price:
    """An hourly price and where it came from."""

    usd_per_hour: float | None
    source: str


@dataclass(frozen=True)
class CostConfig:
    """What energy and time cost: grid intensity (region or number), PUE, and dollars per hour.

    Invalid values raise UserError naming the flag (--region, --grid-gco2-per-kwh, --pue,
    --usd-per-hour).
    """

    usd_per_hour: float | None = None
    region: str | None = None
    grid_gco2_per_kwh: float | None = None
    pue: float | None = None  # None: not given, 1.0 is used and labelled a default

    def __post_init__(self) -> None:
        if self.usd_per_hour is not None:
            object.__setattr__(self, "usd_per_hour", check_positive(self.usd_per_hour, "--usd-per-hour", allow_zero=True))
        if self.grid_gco2_per_kwh is not None:
            object.__setattr__(
                self, "grid_gco2_per_kwh", check_positive(self.grid_gco2_per_kwh, "--grid-gco2-per-kwh", allow_zero=True)
            )
        if self.pue is not None:
            pue = check_positive(self.pue, "--pue")
            if pue < 1.0:
                from beyondscale.errors import UserError

                raise UserError(f"--pue must be >= 1.0 (total facility power / IT power), got {self.pue!r}")
            object.__setattr__(self, "pue", pue)
        if self.grid_gco2_per_kwh is None:
            grid_intensity(self.region)  # validate the region now, not at report time

    @property
    def pue_value(self) -> float:
        """The PUE applied: the user's, else 1.0 (no facility overhead counted)."""
        return 1.0 if self.pue is None else self.pue

    @property
    def pue_source(self) -> str:
        return "user" if self.pue is not None else "default"

    def intensity(self) -> GridIntensity:
        """The grid intensity these settings select."""
        return grid_intensity(self.region, self.grid_gco2_per_kwh)

    def price(self, device: str = "cpu", hardware: str = "", units: int = 1) -> Price:
        """usd_per_hour if given, else the default for the hardware class; None when unknown."""
        if self.usd_per_hour is not None:
            return Price(self.usd_per_hour, f"user:usd_per_hour={self.usd_per_hour:g}")
        return default_price(device, hardware, units)


def _prices() -> dict[str, dict[str, str]]:
    return {row["class"]: row for row in load_table("prices.csv")}


def default_price(device: str, hardware: str, units: int = 1) -> Price:
    """Default hourly price for `units` of `hardware` (GPU name or CPU model) on `device`."""
    prices = _prices()
    if device.startswith("cuda"):
        spec = longest_match(hardware, load_table("gpu_specs.csv"))
        cls = (spec or {}).get("price_class") or ""
        if cls in prices:
            row = prices[cls]
            return Price(float(row["usd_per_hour"]) * units, f"estimate:price-table {cls} x{units} ({row['source']})")
        return Price(None, f"unknown: no default price for GPU {hardware!r}; pass --usd-per-hour")
    row = prices["cpu-vcpu"]
    return Price(float(row["usd_per_hour"]) * units, f"estimate:price-table cpu-vcpu x{units} ({row['source']})")
