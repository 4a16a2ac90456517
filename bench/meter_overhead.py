"""How much does wrapping every batch in a Meter cost? Prints both times and the overhead ratio.

Runs the same forward pass N times bare and N times inside `meter.measure()`, alternating A/B/B/A so
drift (thermal, other processes) hits both arms alike. The model is a small random Llama built here,
or a Hugging Face folder given by --model.

    python bench/meter_overhead.py --n 200
    python bench/meter_overhead.py --model path/to/model --batch 8 --seq 128
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from beyondscale.measure import Meter


def build_model(path: str | None, device: str):
    """A Hugging Face causal LM: the given folder, or a random ~4M-parameter Llama."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if path:
        model = AutoModelForCausalLM.from_pretrained(path)
    else:
        torch.manual_seed(0)
        cfg = LlamaConfig(
            vocab_size=2048, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
        )
        model = LlamaForCausalLM(cfg)
    return model.to(device).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="Hugging Face model folder (default: tiny random Llama)")
    ap.add_argument("--n", type=int, default=100, help="forward passes per arm")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    model = build_model(args.model, args.device)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    meter = Meter(device=args.device)

    def bare() -> float:
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=ids)
        sync()
        return time.perf_counter() - t0

    def metered() -> float:
        t0 = time.perf_counter()
        with meter.measure() as m:
            with torch.inference_mode():
                model(input_ids=ids)
            m.add_tokens(ids.numel())
        return time.perf_counter() - t0

    for _ in range(3):  # warm-up
        bare()
        metered()
    a: list[float] = []
    b: list[float] = []
    for i in range(args.n):
        if i % 2 == 0:
            a.append(bare())
            b.append(metered())
        else:
            b.append(metered())
            a.append(bare())
    ta, tb = sum(a), sum(b)
    print(f"device={args.device} energy_source={meter.energy_source} n={args.n} batch={args.batch}x{args.seq}")
    print(f"bare:    total {ta:.3f} s  median {statistics.median(a) * 1e3:.2f} ms/batch")
    print(f"metered: total {tb:.3f} s  median {statistics.median(b) * 1e3:.2f} ms/batch")
    print(f"overhead ratio (metered/bare - 1): total {tb / ta - 1:+.2%}  median "
          f"{statistics.median(b) / statistics.median(a) - 1:+.2%}")


if __name__ == "__main__":
    main()
