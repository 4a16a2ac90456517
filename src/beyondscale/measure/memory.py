"""Peak resident memory of this process during one measured block.

getrusage's ru_maxrss is the lifetime high-water mark: once a model conversion has peaked, every
later block reports that peak. Per block we need the peak since the block began:

- Linux: writing "5" to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM) to the
  current RSS; VmHWM read at the end is then the exact peak of the block, at no cost while it runs.
  (The same mark backs getrusage's ru_maxrss, which therefore no longer means "lifetime peak".)
- elsewhere (or where clear_refs is not writable): a background thread samples RSS every 5 ms;
  the peak is the largest sample (a spike shorter than the period can be missed).
"""

from __future__ import annotations

import threading
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
SAMPLE_SECONDS = 0.005


def current_rss() -> int:
    """Resident memory of this process now, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


class KernelPeak:
    """Exact per-block peak from the kernel's resettable high-water mark (Linux)."""

    @staticmethod
    def available() -> bool:
        try:
            _CLEAR_REFS.write_text("5")
            return _hwm() is not None
        except OSError:
            return False

    def start(self) -> None:
        _CLEAR_REFS.write_text("5")

    def stop(self) -> int:
        return _hwm() or current_rss()


def _hwm() -> int | None:
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class SampledPeak:
    """Per-block peak from a sampler thread (portable fallback)."""

    def __init__(self, period: float = SAMPLE_SECONDS) -> None:
        self.period = period
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._peak = current_rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="beyondscale-rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._peak = max(self._peak, current_rss())

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return max(self._peak, current_rss())


def peak_tracker() -> KernelPeak | SampledPeak:
    """The exact kernel mark where it can be reset, else the sampler."""
    return KernelPeak() if KernelPeak.available() else SampledPeak()
