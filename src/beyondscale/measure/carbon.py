"""Carbon: gCO2e = kWh x PUE x grid intensity (gCO2e/kWh), from an offline table.

The table (data/grid_intensity.csv, one row per country, plus data/cloud_intensity.csv for cloud
regions) is CodeCarbon's data (MIT), whose country figures are Our World in Data's
`carbon_intensity_elec` (Ember / Energy Institute, CC BY 4.0); each row carries its year. We ship the
~10 kB CSVs instead of depending on the `codecarbon` package, which pulls in ~15 dependencies
(requests, pandas, prometheus_client, authlib, questionary, ...) for a lookup.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from beyondscale.errors import UserError
from beyondscale.measure._tables import load_table
from beyondscale.measure.meter import check_positive

JOULES_PER_KWH = 3.6e6
WORLD_AVERAGE_GCO2_PER_KWH = 475.0


@dataclass(frozen=True)
class GridIntensity:
    """A grid intensity and the words that say where it came from: "user:..." when the user gave the
    number, else "estimate:..." (a table's yearly average is not the grid's intensity during the run)."""

    gco2_per_kwh: float
    source: str


@functools.cache
def _index() -> dict[str, GridIntensity]:
    idx: dict[str, GridIntensity] = {}
    for row in load_table("grid_intensity.csv"):
        g = float(row["gco2_per_kwh"])
        if row["iso3"] == "WORLD":
            src = "estimate:grid-table WORLD (IEA 2019 world average, via CodeCarbon)"
        else:
            src = f"estimate:grid-table {row['iso3']} (OWID/Ember {row['year']} yearly average, via CodeCarbon)"
        gi = GridIntensity(g, src)
        for key in (row["iso3"], row["iso2"], row["name"]):
            if key:
                idx.setdefault(key.strip().lower(), gi)
    for row in load_table("cloud_intensity.csv"):
        g = float(row["gco2_per_kwh"])
        gi = GridIntensity(
            g, f"estimate:grid-table {row['provider']}:{row['region']} ({row['source']}, via CodeCarbon)"
        )
        idx.setdefault(f"{row['provider']}:{row['region']}".lower(), gi)
        idx.setdefault(row["region"].lower(), gi)
    return idx


def known_regions() -> list[str]:
    """All accepted region keys (lower-case): ISO alpha-3/alpha-2 codes, country names, cloud regions."""
    return sorted(_index())


def grid_intensity(region: str | None = None, grid_gco2_per_kwh: float | str | None = None) -> GridIntensity:
    """Resolve the grid intensity: an explicit number wins, else a region, else the world average.

    `region` is an ISO 3166 code ("FR", "FRA"), a country name, or a cloud region ("gcp:europe-west1").
    Unknown regions raise UserError listing close matches.
    """
    if grid_gco2_per_kwh is not None:
        g = check_positive(grid_gco2_per_kwh, "--grid-gco2-per-kwh", allow_zero=True)
        return GridIntensity(g, f"user:grid_gco2_per_kwh={g:g}")
    if region is None or not str(region).strip():
        return GridIntensity(WORLD_AVERAGE_GCO2_PER_KWH, "estimate:grid-default WORLD (IEA 2019 world average)")
    key = str(region).strip().lower()
    idx = _index()
    if key in idx:
        return idx[key]
    close = difflib.get_close_matches(key, list(idx), n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else "; use an ISO 3166 code such as FR or USA"
    raise UserError(f"--region {region!r} is not a known country or cloud region{hint}")


def grams_co2e(energy_j: float, gco2_per_kwh: float, pue: float = 1.0) -> float:
    """gCO2e for `energy_j` joules at the meter, scaled by the data centre's PUE."""
    return energy_j / JOULES_PER_KWH * pue * gco2_per_kwh
