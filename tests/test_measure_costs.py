"""Carbon, money and derive(): arithmetic against hand values, and bad input errors."""

from __future__ import annotations

import pytest

from beyondscale.errors import UserError
from beyondscale.measure import CostConfig, Measurement, PeakFlops, derive, grid_intensity
from beyondscale.measure.carbon import grams_co2e, known_regions
from beyondscale.measure.cost import default_price


def test_grid_intensity_lookup_by_code_name_and_cloud_region() -> None:
    fr = grid_intensity("FR")
    assert fr.gco2_per_kwh == pytest.approx(56.039)
    assert "FRA" in fr.source and "2023" in fr.source
    assert grid_intensity("fra") == fr == grid_intensity("France")
    assert grid_intensity("gcp:europe-west1").source.startswith("estimate:grid-table gcp:europe-west1")
    assert grid_intensity(None).gco2_per_kwh == 475.0  # world average, labelled estimate
    assert grid_intensity(None).source.startswith("estimate:grid-default")
    assert fr.source.startswith("estimate:grid-table FRA")  # a yearly table average, not today's grid
    assert grid_intensity("XX", grid_gco2_per_kwh="123.5").source.startswith("user:")
    assert grid_intensity("XX", grid_gco2_per_kwh="123.5").gco2_per_kwh == 123.5  # number wins
    assert len(known_regions()) > 400


def test_unknown_region_lists_close_matches() -> None:
    with pytest.raises(UserError, match=r"--region 'Frnace'.*france"):
        grid_intensity("Frnace")
    with pytest.raises(UserError, match="--region"):
        CostConfig(region="Atlantis")


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"grid_gco2_per_kwh": -1}, "--grid-gco2-per-kwh"),
        ({"grid_gco2_per_kwh": "dirty"}, "--grid-gco2-per-kwh"),
        ({"usd_per_hour": -0.5}, "--usd-per-hour"),
        ({"usd_per_hour": "cheap"}, "--usd-per-hour"),
        ({"usd_per_hour": float("nan")}, "--usd-per-hour"),
        ({"pue": 0.8}, "--pue"),
        ({"pue": "x"}, "--pue"),
    ],
)
def test_bad_cost_inputs_name_the_flag(kwargs: dict, flag: str) -> None:
    with pytest.raises(UserError, match=flag):
        CostConfig(**kwargs)


def test_carbon_arithmetic() -> None:
    # 3.6 MJ = 1 kWh; x PUE 1.2 x 400 g/kWh = 480 g
    assert grams_co2e(3.6e6, 400.0, 1.2) == pytest.approx(480.0)
    assert grams_co2e(0.0, 400.0) == 0.0


def test_default_prices() -> None:
    cpu = default_price("cpu", "AMD EPYC", 2)
    assert cpu.usd_per_hour == pytest.approx(0.067) and cpu.source.startswith("estimate:price-table cpu-vcpu")
    h100 = default_price("cuda", "NVIDIA H100 80GB HBM3", 1)
    assert h100.usd_per_hour == pytest.approx(3.0) and h100.source.startswith("estimate:price-table h100")
    assert default_price("cuda", "NVIDIA A100-SXM4-80GB", 2).usd_per_hour == pytest.approx(2.6)
    unknown = default_price("cuda", "Mystery GPU", 1)
    assert unknown.usd_per_hour is None and "usd-per-hour" in unknown.source
    assert CostConfig(usd_per_hour=1.5).price("cpu", "x", 64).usd_per_hour == 1.5


MEAS = Measurement(
    wall_s=10.0, cpu_s=8.0, tokens_in=900, tokens_out=100, peak_rss_bytes=1 << 30, energy_j=360.0,
    energy_source="estimate:tdp", energy_estimated=True, device="cpu", hardware="AMD EPYC", hardware_units=2,
)


def test_derive_hand_values() -> None:
    costs = CostConfig(usd_per_hour=3.6, grid_gco2_per_kwh=500.0, pue=1.5)
    peak = PeakFlops(device="cpu", dtype="float32", probe_flops=1e12, spec_flops=None, probe_detail="n=1024")
    d = derive(MEAS, flops_per_token=1e9, n_items=20, n_correct=5, costs=costs, peak_flops=peak)
    assert d["tokens_per_s"] == pytest.approx(100.0)
    assert d["prefill_tokens_per_s"] == pytest.approx(90.0)
    assert d["decode_tokens_per_s"] == pytest.approx(10.0)
    assert d["ms_per_item"] == pytest.approx(500.0) and "latency_ms_per_item" not in d
    assert d["joules_per_token"] == pytest.approx(0.36)
    assert d["joules_per_correct"] == pytest.approx(72.0)
    # 360 J = 1e-4 kWh; x 1.5 x 500 = 0.075 g for 1000 tokens
    assert d["gco2e"] == pytest.approx(0.075)
    assert d["gco2e_per_1k_tokens"] == pytest.approx(0.075)
    # 10 s at $3.6/h = $0.01
    assert d["usd"] == pytest.approx(0.01)
    assert d["usd_per_1m_tokens"] == pytest.approx(10.0)
    assert d["usd_per_correct"] == pytest.approx(0.002)
    assert d["achieved_flops"] == pytest.approx(1e11)
    assert d["mfu"] == pytest.approx(0.1)
    assert d["energy_source"] == "estimate:tdp" and d["energy_estimated"] is True
    # the grid figure is the user's, but the energy under it is estimated: the carbon figure is an estimate
    assert d["carbon_source"].startswith("estimate") and "user:grid_gco2_per_kwh=500" in d["carbon_source"]
    assert "estimate:tdp" in d["carbon_source"]
    assert d["cost_source"].startswith("user:usd_per_hour")
    assert d["peak_flops_source"].startswith("probe:")


def test_derive_spec_peak_and_missing_values() -> None:
    peak = PeakFlops(device="cuda", dtype="bfloat16", probe_flops=5e14, spec_flops=4e11, spec_name="X")
    d = derive(MEAS, flops_per_token=1e9, n_items=20, n_correct=0, costs=CostConfig(usd_per_hour=1), peak_flops=peak)
    assert d["mfu"] == pytest.approx(0.25) and d["peak_flops_source"].startswith("spec:X")
    assert d["joules_per_correct"] is None and d["usd_per_correct"] is None  # 0 correct: undefined
    d2 = derive(MEAS, n_items=20)  # defaults: world grid, default CPU price, no FLOPs
    assert d2["mfu"] is None and d2["achieved_flops"] is None and d2["n_correct"] is None
    assert d2["cost_source"].startswith("estimate:price-table cpu-vcpu x2")
    assert d2["usd"] == pytest.approx(10 / 3600 * 0.067)
    assert d2["carbon_source"].startswith("estimate") and "estimate:grid-default WORLD" in d2["carbon_source"]

    class Facts:
        flops_per_token = 2e9

    assert derive(MEAS, n_items=1, facts=Facts())["achieved_flops"] == pytest.approx(2e11)


def test_derive_bad_counts() -> None:
    with pytest.raises(UserError, match="n_correct"):
        derive(MEAS, n_items=3, n_correct=4)


def test_carbon_from_measured_energy_and_user_figures_is_not_an_estimate() -> None:
    measured = Measurement(wall_s=10.0, tokens_in=100, energy_j=36.0, energy_source="rapl", energy_estimated=False,
                           energy_scope="whole-machine")
    d = derive(measured, n_items=1, costs=CostConfig(grid_gco2_per_kwh=400.0, pue=1.2))
    assert not d["carbon_source"].startswith("estimate") and d["carbon_source"].startswith("user")
    # PUE left at its default is a default, hence an estimate
    d2 = derive(measured, n_items=1, costs=CostConfig(grid_gco2_per_kwh=400.0))
    assert d2["carbon_source"].startswith("estimate") and "PUE 1 (default)" in d2["carbon_source"]
    assert d["energy_scope"] == "whole-machine"  # RAPL counts every process on the machine


def test_mfu_from_the_flops_actually_computed() -> None:
    peak = PeakFlops(device="cpu", dtype="float32", probe_flops=1e12, spec_flops=None, probe_detail="n=1024")
    counted = Measurement(wall_s=10.0, tokens_in=1000, model_flops=5e11)
    d = derive(counted, flops_per_token=1e9, n_items=1, peak_flops=peak)
    assert d["achieved_flops"] == pytest.approx(5e10)  # 5e11 FLOPs / 10 s, not 1e9 x 1000 tokens / 10 s
    assert d["mfu"] == pytest.approx(0.05) and d["flops_source"] == "counted"
    nominal = derive(Measurement(wall_s=10.0, tokens_in=1000), flops_per_token=1e9, n_items=1, peak_flops=peak)
    assert nominal["achieved_flops"] == pytest.approx(1e11) and nominal["flops_source"].startswith("estimate")
