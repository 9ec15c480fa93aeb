"""Bitstreams of every board's default configuration: LUTs, flip-flops, DSPs, block RAM, Fmax,
multipliers and peak GOPS.

Each board's default configuration (``intrain boards``) is built with ``intrain build``'s flow
(:func:`intrain.boards.build.build_board`: Yosys, nextpnr with ``--report`` at the slowest
speed grade, the packer; all YoWASP wheels) at the board's default clock, one board after the
other. Peak GOPS is ``2 x MACs x Fmax`` (one multiply and one add per multiplier per cycle at
nextpnr's Fmax); the report also keeps the GOPS at the PLL clock. A board whose configuration
fails to build is tabulated with the reason (the logic of the engine can overflow the small
parts). Slow: minutes per board (about 5 for an ECP5 board's default; a 12x12 ECP5 engine far
longer); not part of the test suite.

    python bench/fpga.py [BOARD ...] [--keep DIR] [--json FILE] [--seed N]
    python bench/fpga.py --reports DIR [DIR ...] [BOARD ...]  # add finished builds' reports

The results go to ``bench/results/fpga.json`` unless ``--json`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from intrain.boards.build import build_board
from intrain.boards.registry import BOARDS, get_board
from intrain.errors import IntrainError

DEFAULT_JSON = Path(__file__).parent / "results" / "fpga.json"


def _row(report: dict) -> dict:
    u = report.get("utilization", {})

    def used(key):
        return u.get(key, {}).get("used")

    def avail(key):
        return u.get(key, {}).get("available")

    fmax = report.get("fmax_mhz")
    macs = report.get("macs")
    return {
        "board": report["board"],
        "device": report["device"],
        "config": report["config"],
        "dsp_mode": report.get("dsp_mode"),
        "macs": macs,
        "lut": used("lut"), "lut_available": avail("lut"),
        "ff": used("ff"), "ff_available": avail("ff"),
        "dsp": used("dsp"), "dsp_available": avail("dsp"),
        "bram": used("bram"), "bram_available": avail("bram"),
        "fmax_mhz": fmax,
        "clock_mhz": report.get("clock_mhz"),
        "timing_met": report.get("timing_met"),
        "peak_gops_at_fmax": None if fmax is None else round(2 * macs * fmax / 1000, 2),
        "peak_gops_at_clock": report.get("peak_gops"),
        "build_seconds": report.get("build_seconds"),
        "seconds": report.get("seconds"),
        "tools": report.get("tools"),
    }


def _print(rows):
    print(f"{'board':15} {'array':>6} {'MACs':>5} {'LUT':>13} {'FF':>13} {'DSP':>8} "
          f"{'BRAM':>8} {'Fmax':>7} {'clock':>6} {'GOPS':>6} {'time s':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['board']:15} {r.get('array', ''):>6} {r.get('macs') or '':>5}  "
                  f"not built: {r['error'].splitlines()[0][:90]}")
            continue

        def frac(key, r=r):
            return f"{r[key]}/{r[key + '_available']}" if r[key] is not None else "-"
        print(f"{r['board']:15} {r['config']['array']:>6} {r['macs']:5} {frac('lut'):>13} "
              f"{frac('ff'):>13} {frac('dsp'):>8} {frac('bram'):>8} "
              f"{r['fmax_mhz'] or 0:7.2f} {r['clock_mhz']:6.1f} "
              f"{r['peak_gops_at_fmax'] or 0:6.2f} {r['build_seconds']:7.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("boards", nargs="*",
                    help=f"boards to build (default: all); {', '.join(BOARDS)}")
    ap.add_argument("--keep", type=Path, help="keep the build folders under this folder")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placer seed")
    ap.add_argument("--reports", type=Path, nargs="+",
                    help="tabulate these finished build folders (their report.json) too; "
                         "only the boards named are built then")
    args = ap.parse_args(argv)

    rows = []
    for folder in args.reports or ():
        rows.append(_row(json.loads((folder / "report.json").read_text())))
    if args.boards or not args.reports:
        try:
            boards = [get_board(b) for b in args.boards] or list(BOARDS.values())
        except IntrainError as e:
            ap.error(str(e))
        with tempfile.TemporaryDirectory(prefix="intrain-fpga-") as tmp:
            root = args.keep or Path(tmp)
            for board in boards:
                cfg = board.default_config
                start = time.monotonic()
                try:
                    report = build_board(board.name, cfg, out_dir=root / board.name,
                                         seed=args.seed, check=False)
                    rows.append(_row(report))
                except IntrainError as e:
                    rows.append({"board": board.name, "device": board.device,
                                 "array": f"{cfg.array_rows}x{cfg.array_cols}",
                                 "macs": cfg.array_rows * cfg.array_cols, "error": str(e),
                                 "build_seconds": round(time.monotonic() - start, 1)})
    _print(rows)
    payload = {
        "note": "peak GOPS = 2 x MACs x Fmax; Fmax from nextpnr at the slowest speed grade; "
                "LUT = logic cells (iCE40), TRELLIS_COMB (ECP5), LUT4 + ALU (Gowin)",
        "boards": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
