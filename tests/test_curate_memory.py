"""A 200 MB generated input is streamed with bounded memory (slow: about a minute on two cores).

The whole process tree's resident memory (main process and workers, sampled every 0.2 s) is
compared between a 20 MB and a 200 MB input: ten times the data must not cost anywhere near
ten times the memory. The rules are off here so that the run is quick; the dedup index and the
scorer-free keep path are the state that could grow. `bench/curate_vs_datatrove.py --memory-mb`
measures the full FineWeb recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from beyondscale.lab.curate.synthetic import write_jsonl


def peak_tree_rss(cmd: list[str]) -> tuple[int, dict]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            root = psutil.Process(proc.pid)
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    return peak, json.loads(stdout)


@pytest.mark.slow
def test_200mb_input_streams_with_bounded_memory(tmp_path: Path):
    peaks = {}
    for mb in (20, 200):
        source = tmp_path / f"in{mb}.jsonl"
        _, size = write_jsonl(source, mb * 10**6)
        cmd = [sys.executable, "-m", "beyondscale.cli", "curate", str(source), "--out", str(tmp_path / f"o{mb}"),
               "--rules", "none", "--dedup", "minhash", "--workers", "2", "--json"]
        peaks[mb], summary = peak_tree_rss(cmd)
        assert summary["input_bytes"] == size and summary["total"] > 0
        source.unlink()
        print(f"{mb} MB: peak RSS {peaks[mb] / 2**20:.0f} MiB, {summary['mb_per_s']:.2f} MB/s")
    assert peaks[200] < peaks[20] + 150 * 2**20  # 180 MB more input, well under 150 MiB more memory
