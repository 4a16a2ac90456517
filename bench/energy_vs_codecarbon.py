"""Our energy meter against CodeCarbon on the same run: both energies, their ratio, and why they differ.

One workload (a small random Llama scoring batches of tokens, as `eval` does, for --seconds) is measured
at once by beyondscale's Meter and by two CodeCarbon trackers (offline: no network; `process` and
`machine` tracking modes). Then each meter's own figures (power model, CPU share, RAM model) are printed
side by side, and the CPU parts are checked against the ratio their assumptions predict.

    pip install 'beyondscale[bench]'            # codecarbon
    python bench/energy_vs_codecarbon.py --seconds 20
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from beyondscale.measure import Meter
from beyondscale.measure.energy import RaplReader, TdpEstimateReader
from beyondscale.measure.environment import cpu_model, logical_cpus

KWH = 3.6e6  # joules per kWh


def build_model(device: str) -> torch.nn.Module:
    """A random ~4M-parameter Llama (nothing downloaded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)
    return LlamaForCausalLM(cfg).to(device).eval()


def workload(model: torch.nn.Module, seconds: float, device: str) -> int:
    """Score batches of 8 x 128 tokens until `seconds` have passed; returns the tokens read."""
    ids = torch.randint(0, model.config.vocab_size, (8, 128), generator=torch.Generator().manual_seed(0)).to(device)
    tokens, end = 0, time.perf_counter() + seconds
    with torch.inference_mode():
        while time.perf_counter() < end:
            logits = model(ids).logits
            torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[..., None]).sum().item()
            tokens += ids.numel()
    return tokens


def codecarbon_tracker(mode: str, interval: float):
    from codecarbon import OfflineEmissionsTracker

    return OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False, log_level="error",
                                   measure_power_secs=interval, tracking_mode=mode)


def cc_cpu(tracker) -> object | None:
    return next((h for h in getattr(tracker, "_hardware", []) if type(h).__name__ == "CPU"), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the workload")
    ap.add_argument("--interval", type=float, default=1.0, help="CodeCarbon's power sampling interval (s)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    logging.getLogger("codecarbon").setLevel(logging.ERROR)

    model = build_model(args.device)
    workload(model, 1.0, args.device)  # warm-up, outside every meter
    meter = Meter(device=args.device)
    trackers = {mode: codecarbon_tracker(mode, args.interval) for mode in ("process", "machine")}
    for t in trackers.values():
        t.start()
    with meter.measure() as block:
        tokens = workload(model, args.seconds, args.device)
        block.add_tokens(tokens, 0)
    for t in trackers.values():
        t.stop()
    ours = block.result
    report(ours, meter, trackers, tokens, args)


def report(ours, meter: Meter, trackers: dict, tokens: int, args: argparse.Namespace) -> None:
    cc = {mode: t.final_emissions_data for mode, t in trackers.items()}
    print(f"machine: {cpu_model()!r}, {logical_cpus()} logical CPUs, device {args.device}; workload {tokens:,} tokens "
          f"in {ours.wall_s:.1f} s (process CPU {ours.cpu_s:.1f} s = {ours.cpu_s / ours.wall_s:.2f} CPUs busy)")
    print(f"{'meter':34s} {'energy J':>10s} {'CPU J':>9s} {'RAM J':>9s} {'GPU J':>8s}  source")
    reader = meter.reader
    cpu_j = ram_j = None
    if isinstance(reader, TdpEstimateReader):
        cpu_j = ours.cpu_s * reader.power.watts_per_logical_cpu
        ram_j = ours.energy_j - cpu_j
    print(f"{'beyondscale Meter':34s} {ours.energy_j:10.2f} {_f(cpu_j):>9s} {_f(ram_j):>9s} {'':>8s}  "
          f"{ours.energy_source} ({ours.energy_scope})")
    for mode, d in cc.items():
        print(f"{'CodeCarbon ' + mode:34s} {d.energy_consumed * KWH:10.2f} {d.cpu_energy * KWH:9.2f} "
              f"{d.ram_energy * KWH:9.2f} {d.gpu_energy * KWH:8.2f}  {getattr(d, 'tracking_mode', mode)}")
    for mode, d in cc.items():
        print(f"ratio beyondscale / CodeCarbon {mode}: {ours.energy_j / (d.energy_consumed * KWH):.3f}")
    why(ours, reader, trackers, cc, cpu_j, ram_j)


def why(ours, reader, trackers: dict, cc: dict, cpu_j: float | None, ram_j: float | None) -> None:
    rapl = RaplReader().available()
    cpu = cc_cpu(trackers["process"])
    print("\nwhy they differ:")
    print(f"- RAPL counters readable here: {'yes' if rapl else 'no'} (CodeCarbon's CPU mode: "
          f"{getattr(cpu, '_mode', '?')}); without them both meters estimate, neither measures")
    if isinstance(reader, TdpEstimateReader):
        ours_w = reader.power.watts_per_logical_cpu
        cc_w = float(getattr(cpu, "_tdp", 0) or 0) / max(1, int(getattr(cpu, "_cpu_count", 1) or 1))
        print(f"- CPU power model: ours = process CPU seconds x {ours_w:.3f} W per logical CPU "
              f"({reader.power.source}); CodeCarbon = its TDP {getattr(cpu, '_tdp', '?')} W x measured CPU load "
              f"x wall time, i.e. {cc_w:.3f} W per logical CPU")
        d = cc["process"]
        if cc_w and d.cpu_energy:
            print(f"  CPU parts: ours {cpu_j:.2f} J vs CodeCarbon process {d.cpu_energy * KWH:.2f} J = "
                  f"{cpu_j / (d.cpu_energy * KWH):.3f}; the W-per-CPU assumptions alone predict {ours_w / cc_w:.3f} "
                  "(the rest: CodeCarbon samples load every interval, ours counts CPU seconds exactly)")
        resident_gb = ram_j / (reader.ram_watts_per_gb * ours.wall_s) if reader.ram_watts_per_gb else 0.0
        print(f"- RAM model: ours = {reader.ram_watts_per_gb} W/GB (CodeCarbon's earlier 3 W per 8 GB) x this "
              f"process's peak resident memory ({resident_gb:.2f} GB) x wall time -> {ram_j:.2f} J; CodeCarbon 3 = "
              f"5 W per DIMM it guesses from the memory size, at least 2 DIMMs: {cc['process'].ram_power:.1f} W "
              f"(process mode) / {cc['machine'].ram_power:.1f} W (machine mode) x wall time")
    print("- scope: ours is this process (an estimate) or the whole machine/GPU when counters exist (measured); "
          "CodeCarbon 'machine' counts every process's CPU load on the machine, 'process' only ours")


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


if __name__ == "__main__":
    main()
