"""`beyondscale curate` against datatrove's own pipeline (FineWeb's filters), on the same documents.

Prints, per filter, how often the two agree on the keep/drop decision and its reason (target:
every one identical), whether the kept texts are identical, and the throughput (documents/s, MB/s,
wall time, load average) of each, measured alternately in this one process. Documents are
generated from the standard library's own docstrings and sources (see `curate/synthetic.py`).

    flock /tmp/beyondscale-bench.lock .venv/bin/python bench/curate_vs_datatrove.py --mb 6
    flock /tmp/beyondscale-bench.lock .venv/bin/python bench/curate_vs_datatrove.py --memory-mb 200

datatrove runs as FineWeb runs it: JsonlReader -> GopherRepetitionFilter -> GopherQualityFilter ->
C4QualityFilter(filter_no_terminal_punct=False) -> FineWebQualityFilter -> JsonlWriter, each filter
with a JsonlWriter exclusion writer, on a LocalPipelineExecutor with as many tasks as workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RULES = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]


def make_corpus(folder: Path, mb: float, parts: int, seed: int = 0) -> tuple[int, int]:
    """Generated JSONL split into `parts` files (datatrove gives one file per task)."""
    from beyondscale.lab.curate.synthetic import write_jsonl

    folder.mkdir(parents=True)
    whole = folder.parent / "whole.jsonl"
    count, size = write_jsonl(whole, int(mb * 1e6), seed)
    lines = whole.read_text(encoding="utf-8").splitlines(keepends=True)
    step = -(-len(lines) // parts)
    for i in range(parts):
        (folder / f"part{i}.jsonl").write_text("".join(lines[i * step:(i + 1) * step]), encoding="utf-8")
    whole.unlink()
    return count, size


def run_ours(corpus: Path, out: Path, workers: int) -> float:
    from beyondscale.lab.curate import CurateSettings, run_curate

    start = time.perf_counter()
    run_curate([str(corpus)], out, CurateSettings(rules=list(RULES), dedup="none", workers=workers))
    return time.perf_counter() - start


def run_datatrove(corpus: Path, out: Path, workers: int) -> float:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    def excluded(rule: str) -> JsonlWriter:
        return JsonlWriter(str(out / "removed" / rule), compression=None)

    pipeline = [
        JsonlReader(str(corpus), compression=None),
        GopherRepetitionFilter(exclusion_writer=excluded("gopher_repetition")),
        GopherQualityFilter(exclusion_writer=excluded("gopher_quality")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=excluded("c4")),
        FineWebQualityFilter(exclusion_writer=excluded("fineweb")),
        JsonlWriter(str(out / "kept"), compression=None),
    ]
    start = time.perf_counter()
    LocalPipelineExecutor(pipeline=pipeline, tasks=workers, workers=workers, logging_dir=str(out / "logs")).run()
    return time.perf_counter() - start


def _records(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()]


def fates_ours(out: Path) -> dict[str, tuple]:
    fate = {r["id"]: (None, None, r["text"]) for r in _records(sorted((out / "kept").glob("*.jsonl")))}
    for rule in RULES:
        path = out / "removed" / f"{rule}.jsonl"
        fate.update({r["id"]: (rule, r["reason"], r["text"]) for r in _records([path] if path.exists() else [])})
    return fate


def fates_datatrove(out: Path) -> dict[str, tuple]:
    fate = {r["id"]: (None, None, r["text"]) for r in _records(sorted((out / "kept").glob("*.jsonl")))}
    for rule in RULES:
        for r in _records(sorted((out / "removed" / rule).glob("*.jsonl"))):
            fate[r["id"]] = (rule, r.get("metadata", {}).get("filter_reason"), r["text"])
    return fate


def agreement(ours: dict[str, tuple], theirs: dict[str, tuple]) -> list[tuple[str, int, int]]:
    """Per filter: (filter, documents reaching it in datatrove, of which both decided identically)."""
    assert set(ours) == set(theirs), "the two runs saw different documents"
    rows, alive = [], set(theirs)
    for rule in RULES:
        same = sum((ours[i][0] == rule) == (theirs[i][0] == rule) and (theirs[i][0] != rule or
                   ours[i][1] == theirs[i][1]) for i in alive)
        rows.append((rule, len(alive), same))
        alive = {i for i in alive if theirs[i][0] != rule}
    kept = [i for i in theirs if theirs[i][0] is None]
    rows.append(("kept text identical", len(kept), sum(ours[i][0] is None and ours[i][2] == theirs[i][2]
                                                       for i in kept)))
    return rows


def compare(args: argparse.Namespace) -> None:
    from loguru import logger

    logger.remove()  # datatrove's per-step statistics would bury the comparison
    logger.add(sys.stderr, level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        count, size = make_corpus(corpus, args.mb, args.workers)
        print(f"{count} generated documents, {size / 1e6:.1f} MB, {args.workers} workers, "
              f"load average before: {os.getloadavg()[0]:.2f}")
        times: dict[str, list[float]] = {"beyondscale": [], "datatrove": []}
        for rep in range(args.repeats):
            for name, runner in (("beyondscale", run_ours), ("datatrove", run_datatrove)):
                times[name].append(runner(corpus, Path(tmp) / f"{name}{rep}", args.workers))
                print(f"  {name:12s} run {rep + 1}: {times[name][-1]:6.1f} s  (load {os.getloadavg()[0]:.2f})")
        rows = agreement(fates_ours(Path(tmp) / "beyondscale0"), fates_datatrove(Path(tmp) / "datatrove0"))
    print("\nagreement with datatrove (same decision and same reason)")
    for rule, total, same in rows:
        print(f"  {rule:22s} {same:6d} / {total:6d}  ({100 * same / max(total, 1):.2f} %)")
    print("\nthroughput (median of the alternating runs; wall time includes process start and, for us, the "
          "validating input pass)")
    for name, values in times.items():
        wall = statistics.median(values)
        print(f"  {name:12s} {wall:6.1f} s  {count / wall:8.1f} docs/s  {size / 1e6 / wall:6.3f} MB/s")
    ratio = statistics.median(times["datatrove"]) / statistics.median(times["beyondscale"])
    print(f"  beyondscale is {ratio:.2f}x datatrove's speed; load average after: {os.getloadavg()[0]:.2f}")


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over the process tree; PSS splits shared pages, RSS counts them per process."""
    import psutil

    rss = pss = 0
    try:
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            info = proc.memory_full_info()
            rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
    except psutil.Error:
        pass
    return rss, pss


def memory(args: argparse.Namespace) -> None:
    """Peak resident memory of the whole process tree of `beyondscale curate` on a generated input."""
    from beyondscale.lab.curate.synthetic import write_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "big.jsonl"
        count, size = write_jsonl(source, int(args.memory_mb * 1e6))
        cmd = [sys.executable, "-m", "beyondscale.cli", "curate", str(source), "--out", str(Path(tmp) / "out"),
               "--workers", str(args.workers), "--json", *args.extra]
        print(f"{count} documents, {size / 1e6:.1f} MB: {' '.join(cmd[2:])}")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        peak_rss, peak_pss, samples = 0, 0, []
        while proc.poll() is None:
            rss, pss = tree_memory(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            samples.append(pss)
            time.sleep(0.25)
        summary = json.loads(proc.stdout.read())
    quarter = max(len(samples) // 4, 1)
    print(f"peak of the process tree: RSS {peak_rss / 2**20:.0f} MiB, PSS {peak_pss / 2**20:.0f} MiB; median PSS "
          f"in the first quarter of the run {statistics.median(samples[:quarter] or [0]) / 2**20:.0f} MiB, "
          f"last quarter {statistics.median(samples[-quarter:] or [0]) / 2**20:.0f} MiB")
    print(f"kept {summary['kept']} of {summary['total']}; {summary['seconds']:.0f} s, {summary['docs_per_s']:.0f} "
          f"docs/s, {summary['mb_per_s']:.2f} MB/s; load average {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=6.0, help="generated input size for the comparison")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-mb", type=float, default=None, help="measure peak memory on this input size")
    parser.add_argument("extra", nargs="*", help="extra curate flags for --memory-mb (after --)")
    args = parser.parse_args()
    memory(args) if args.memory_mb else compare(args)


if __name__ == "__main__":
    main()
