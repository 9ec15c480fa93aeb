"""Bitstreams of every board's default configuration: LUTs, flip-flops, DSPs, block RAM, Fmax,
multipliers and peak GOPS.

Each board's default configuration (``intrain boards``) is built with ``intrain build``'s flow
(:func:`intrain.boards.build.build_board`: Yosys, nextpnr with ``--report`` at the slowest
speed grade, the packer; all YoWASP wheels) at the board's default clock, one board after the
other. Peak GOPS is ``2 x MACs x Fmax`` (one multiply and one add per multiplier per cycle at
nextpnr's Fmax); the report also keeps the GOPS at the PLL clock. A board whose configuration
fails to build is tabulated with the reason (the logic of the engine can overflow the small
parts). Slow: minutes per board (about 15 for an ECP5 board's default); not part of the test
suite.

The builds are the points of a sweep (:mod:`intrain.sweep_run`): one Dask worker by default, so
the build times are those of one build at a time; ``--workers N`` builds N at once and
``--scheduler tcp://HOST:PORT`` on an existing Dask cluster. With ``--keep DIR`` a re-run skips
the boards whose report is in ``DIR/reports/``.

    python bench/fpga.py [BOARD ...] [--keep DIR] [--json FILE] [--seed N] [--workers N]
                         [--scheduler tcp://HOST:PORT]
    python bench/fpga.py --reports DIR [DIR ...] [BOARD ...]  # add finished builds' reports
    python bench/fpga.py --reports DIR --append   # add them to the results file's rows

The results go to ``bench/results/fpga.json`` unless ``--json`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from intrain.boards.registry import BOARDS, get_board
from intrain.errors import IntrainError
from intrain.sweep import Point
from intrain.sweep_run import open_client, run_sweep

DEFAULT_JSON = Path(__file__).parent / "results" / "fpga.json"


def _config(report: dict):
    """The configuration a build report was made from (its full config when the report has it,
    else the board's default), and the board."""
    from intrain.config import Config

    b = get_board(report["board"])
    full = report.get("config_full")
    return (Config.from_dict(full) if full else b.default_config), b


def _predicted(report: dict) -> dict:
    """The resource model's figures for a build (the engine's geometry)."""
    from intrain.hdl.engine import EngineGeometry

    cfg, b = _config(report)
    return EngineGeometry(cfg).resources(b.family)


def _step(report: dict, clock_mhz: float | None) -> dict:
    """A training step of the build's network at the build's clock: its cycles (the geometry's
    cycle model), seconds and effective GOPS (2 x the step's network MACs / time)."""
    from intrain.hdl.engine import EngineGeometry

    cfg, b = _config(report)
    geo = EngineGeometry(cfg, b.dsp)
    cycles = geo.train_cycles(cfg.batch_size)
    if not clock_mhz:
        return {"step_cycles": cycles}
    seconds = cycles / (clock_mhz * 1e6)
    return {"step_cycles": cycles, "step_us": round(seconds * 1e6, 1),
            "effective_gops": round(2 * geo.useful_train_macs(cfg.batch_size) / seconds / 1e9, 3)}


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
        "spram": used("spram"), "spram_available": avail("spram"),
        "fmax_mhz": fmax,
        "clock_mhz": report.get("clock_mhz"),
        "timing_met": report.get("timing_met"),
        "peak_gops_at_fmax": None if fmax is None else round(2 * macs * fmax / 1000, 2),
        "peak_gops_at_clock": report.get("peak_gops"),
        "build_seconds": report.get("build_seconds"),
        "seconds": report.get("seconds"),
        "tools": report.get("tools"),
        "source": report.get("source"),
        "predicted": _predicted(report),
        **_step(report, report.get("clock_mhz")),
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
    built = [r for r in rows if "error" not in r and r.get("predicted")]
    if built:
        print("\ntraining step of the build's network at the clock (the geometry's cycle model)")
        print(f"{'board':15} {'network':32} {'cycles':>8} {'step us':>9} {'effective GOPS':>15}")
        for r in built:
            net = "-".join(map(str, r["config"].get("layers", ())))
            print(f"{r['board']:15} {net:32} {r['step_cycles']:8,} {r.get('step_us', 0):9.1f} "
                  f"{r.get('effective_gops', 0):15.3f}")
        print("\nresource model (EngineGeometry.resources) against the builds")
        print(f"{'board':15} {'LUT est.':>9} {'LUT':>7} {'error':>7} {'DSP est.':>9} {'DSP':>5} "
              f"{'BRAM est.':>10} {'BRAM':>5} {'SPRAM est.':>11} {'SPRAM':>6}")
        for r in built:
            p = r["predicted"]
            spram = f"{p.get('spram', 0):11} {r.get('spram') or 0:6}" \
                if r.get("spram_available") else f"{'-':>11} {'-':>6}"
            print(f"{r['board']:15} {p['luts']:9,} {r['lut']:7,} {p['luts'] / r['lut'] - 1:+7.1%} "
                  f"{p['dsps']:9} {r['dsp']:5} {p['bram']:10} {r['bram']:5} {spram}")


def _build(boards, root: Path, args) -> list[dict]:
    """Build every board's default configuration as the points of one sweep; the table's rows
    in the boards' order."""
    points = [Point(index=n, config=b.default_config, jobs=("build",), board=b.name,
                    seed=b.placer_seed if args.seed is None else args.seed)
              for n, b in enumerate(boards)]
    with open_client(workers=None if args.scheduler else args.workers,
                     scheduler=args.scheduler) as client:
        result = run_sweep(points, root, client, build_options={"check": False})
    rows = []
    for p in points:
        record = result.records[result.keys[p.index]["build"]]
        if "report" in record:
            rows.append(_row(record["report"]))
            continue
        cfg = p.config
        rows.append({"board": p.board, "device": get_board(p.board).device, "array": p.array,
                     "macs": cfg.array_rows * cfg.array_cols, "error": record["error"],
                     "build_seconds": record["seconds"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("boards", nargs="*",
                    help=f"boards to build (default: all); {', '.join(BOARDS)}")
    ap.add_argument("--keep", type=Path, help="keep the sweep (its builds, reports and table) "
                    "in this folder; a re-run skips the boards built there")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    ap.add_argument("--seed", type=int,
                    help="nextpnr placer seed (default: each board's own, Board.placer_seed)")
    ap.add_argument("--workers", type=int, default=1,
                    help="boards built at once on a local Dask cluster")
    ap.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                    help="build on an existing Dask cluster")
    ap.add_argument("--reports", type=Path, nargs="+",
                    help="tabulate these finished build folders (their report.json) too; "
                         "only the boards named are built then")
    ap.add_argument("--append", action="store_true",
                    help="keep the rows of the results file for other boards and networks "
                         "(a board and network tabulated now replaces its row)")
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
            try:
                rows += _build(boards, args.keep or Path(tmp), args)
            except IntrainError as e:
                ap.error(str(e))
    if args.append and args.json.is_file():
        def key(row):
            return row["board"], json.dumps(row.get("config", {}).get("layers"))

        new = {key(r) for r in rows}
        old = json.loads(args.json.read_text()).get("boards", [])
        rows = [r for r in old if key(r) not in new] + rows
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
