"""Peak memory per measured block, above the baseline taken before the model loaded.

A known allocation inside a block must show up; a later block that allocates nothing must not
inherit it (today's getrusage high-water mark is the process's lifetime peak)."""

from __future__ import annotations

import mmap
import time

import pytest

from beyondscale.measure import memory
from beyondscale.measure.meter import Meter

MB = 1 << 20


@pytest.fixture(params=["kernel", "sampler"])
def tracker_kind(request, monkeypatch):
    if request.param == "kernel" and not memory.KernelPeak.available():
        pytest.skip("/proc/self/clear_refs is not writable here")
    if request.param == "sampler":
        monkeypatch.setattr(memory.KernelPeak, "available", staticmethod(lambda: False))
    return request.param


def _touch(n: int) -> mmap.mmap:
    """n bytes of fresh anonymous pages, all written (so resident); closing returns them to the OS.
    (malloc could reuse memory that earlier tests freed but kept resident.)"""
    block = mmap.mmap(-1, n)
    for offset in range(0, n, mmap.PAGESIZE):
        block[offset] = 1
    return block


def test_known_allocation_inside_block(tracker_kind) -> None:
    meter = Meter()
    assert meter._memory.__name__ == ("KernelPeak" if tracker_kind == "kernel" else "SampledPeak")
    model = _touch(100 * MB)  # loaded after the baseline: counts in every block
    with meter.measure() as m:
        transient = _touch(60 * MB)
        time.sleep(0.05)  # several sampler periods
        transient.close()
    peak = m.result.peak_rss_bytes
    assert 158 * MB <= peak <= 185 * MB, peak / MB
    with meter.measure() as quiet:
        time.sleep(0.03)
    assert 98 * MB <= quiet.result.peak_rss_bytes <= 125 * MB, quiet.result.peak_rss_bytes / MB
    meter.reset_baseline()  # e.g. before the next model loads
    with meter.measure() as after:
        time.sleep(0.03)
    assert after.result.peak_rss_bytes <= 25 * MB, after.result.peak_rss_bytes / MB
    model.close()


def test_sampler_overhead_of_empty_blocks_is_small(monkeypatch) -> None:
    monkeypatch.setattr(memory.KernelPeak, "available", staticmethod(lambda: False))
    meter = Meter()
    t0 = time.perf_counter()
    for _ in range(300):
        with meter.measure():
            pass
    assert time.perf_counter() - t0 < 0.5


def test_gpu_peak_per_block_above_baseline() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    meter = Meter(device="cuda")
    model = torch.empty(100 * MB, dtype=torch.uint8, device="cuda")  # after the baseline: counts
    with meter.measure() as m:
        transient = torch.empty(60 * MB, dtype=torch.uint8, device="cuda")
        del transient
    assert m.result.peak_gpu_bytes == 160 * MB  # allocator statistics are exact
    with meter.measure() as quiet:
        pass
    assert quiet.result.peak_gpu_bytes == 100 * MB  # reset per block
    del model
