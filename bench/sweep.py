"""Wall time of one build sweep on a local Dask cluster of 1 worker and of 2 workers.

The sweep is ``intrain sweep --board icebreaker tang-nano-9k --array 1x1 --layers 16,10
32,10 64,10 --batch-size 8`` (2 boards x 3 network shapes, each build about a minute): the same
six bitstreams with each number of workers, in fresh folders (nothing resumed), timed from the
cluster's start to the last report. The table and plots of the last run land in ``--keep``
(default ``runs/bench-sweep``); the timings in ``bench/results/sweep.json``.

    python bench/sweep.py [--workers 1,2] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from intrain.sweep import expand
from intrain.sweep_plot import plot_sweep
from intrain.sweep_run import open_client, run_sweep, summary_text

SPEC = {"job": "build", "board": ["icebreaker", "tang-nano-9k"], "array": "1x1",
        "layers": ["16,10", "32,10", "64,10"], "batch": 8}
KEEP = ("point", "board", "layers", "array", "status", "lut", "fmax_mhz", "timing_met",
        "effective_gops", "build_seconds", "error")


def _timed_sweep(points, workers: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()
    t0 = time.monotonic()
    with open_client(workers=workers) as client:
        result = run_sweep(points, out, client)
    wall = time.monotonic() - t0
    plot_sweep(result.rows, out / "sweep.png")
    print(summary_text(result))
    return {"workers": workers, "wall_seconds": round(wall, 1),
            "build_seconds_sum": round(sum(r["build_seconds"] or 0 for r in result.rows), 1),
            "failed": result.failed, "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "rows": [{k: r[k] for k in KEEP} for r in result.rows]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated")
    ap.add_argument("--keep", type=Path, default=Path("runs/bench-sweep"),
                    help="folder of the sweeps (one per worker count: DIR/workers-N)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/sweep.json"))
    args = ap.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    points = expand(SPEC)
    runs = [_timed_sweep(points, n, args.keep / f"workers-{n}") for n in counts]
    print(f"\n{'workers':>7} {'wall s':>8} {'sum of builds s':>16} {'vs 1 worker':>12}")
    base = next((r["wall_seconds"] for r in runs if r["workers"] == 1), None)
    for r in runs:
        ratio = f"{r['wall_seconds'] / base:.2f}x" if base else "-"
        print(f"{r['workers']:>7} {r['wall_seconds']:>8.1f} {r['build_seconds_sum']:>16.1f} "
              f"{ratio:>12}")
    out = {
        "benchmark": "wall time of a 2-board x 3-shape build sweep on a local Dask cluster",
        "command": "intrain sweep --board icebreaker tang-nano-9k --array 1x1 --layers 16,10 "
                   "32,10 64,10 --batch-size 8 --workers N",
        "runs": runs,
        "ratio_2_to_1": (round(runs[1]["wall_seconds"] / runs[0]["wall_seconds"], 3)
                         if counts[:2] == [1, 2] else None),
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
