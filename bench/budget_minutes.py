"""Does `quickstart --budget-minutes N` spend its N minutes? Asked against spent, on this machine, now.

Runs the whole study once, from nothing (a fresh study folder and store in a temporary directory, so nothing
is reused), as a user would: `beyondscale quickstart --budget-minutes N`. Prints the machine's load before
and after (the study shares the cores with whatever else runs), the study's own split line (planned and
spent, from its stderr) and the command's wall time against N, with their ratio. The goal is a ratio
within 0.85-1.15.

Run on demand, not in the test suite (it takes N minutes and all the cores):

    python bench/budget_minutes.py 12
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", type=float, help="--budget-minutes to ask for (at least 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        cmd = [sys.executable, "-m", "beyondscale.cli", "quickstart", "--budget-minutes", f"{args.minutes:g}",
               "--store", str(Path(tmp) / "store.db"), "--out", str(Path(tmp) / "report.html")]
        print(f"load average before: {load()}  ({os.cpu_count()} cores)")
        start = time.perf_counter()
        env = {**os.environ, "COLUMNS": "1000"}  # the study's lines unwrapped
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False, env=env)
        wall = time.perf_counter() - start
        print(f"load average after:  {load()}")
    if proc.returncode:
        print(proc.stderr[-3000:])
        raise SystemExit(f"quickstart exited {proc.returncode}")
    for line in proc.stderr.splitlines():
        if line.startswith("budget "):
            print(f"study: {line}")
    for line in proc.stdout.splitlines():
        if line.startswith("note: budget "):
            print(f"study: {line[6:]}")
        if line.strip().split(":")[0] in ("plan", "corpus", "curate", "train", "evaluate", "probes", "analyze",
                                           "report", "total"):
            print(f"  {line.strip()}")
    print(f"asked {args.minutes:g} min, spent {wall / 60:.2f} min (the whole command, start-up included): "
          f"ratio {wall / 60 / args.minutes:.3f}")


if __name__ == "__main__":
    main()
