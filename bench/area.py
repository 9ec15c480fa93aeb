"""Where a board's logic goes: the engine's units, one line each, with their LUTs, carry cells,
flip-flops and block RAMs, from one synthesis that keeps the hierarchy.

The board top of a configuration (default: the board's own) is written as ``intrain build``
writes it (:func:`intrain.boards.build.write_design`) and synthesized with the family's Yosys
script run with ``-noflatten``, then ``stat`` per module. Units repeated per lane (``qe_8_0``,
``qe_8_1``, ...) are summed into one line with their count. Without flattening Yosys cannot
optimize across units, and LUTs are mapped with ABC instead of ABC9 (which fails on a
hierarchical netlist), so the total is near, not equal to, the flat build's (``intrain build``'s
report has that one). A minute or two per design
(several on ECP5); not part of the test suite.

    python bench/area.py BOARD [--config FILE.toml] [--json FILE] [--keep DIR]

The results go to ``bench/results/area_<board>[_<config>].json`` unless ``--json`` says
otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from intrain.boards.build import TOOLS, tool_command, write_design
from intrain.boards.registry import get_board
from intrain.config import Config
from intrain.errors import IntrainError

RESULTS = Path(__file__).parent / "results"

#: The Yosys synthesis command per family, hierarchy kept (as the flat build's, otherwise).
#: ABC9 fails on a hierarchical netlist, so LUTs are mapped with ABC (iCE40: its ``-noabc``;
#: ECP5 and Gowin: the script up to its LUT mapping, ``abc -lut 4``, then the rest).
SYNTH = {
    "ice40": "synth_ice40 -dsp -top top -noflatten -noabc",
    "ecp5": "synth_ecp5 -top top -noflatten -run :map_luts\n"
            "techmap -map +/lattice/latches_map.v\nabc -lut 4\nclean\n"
            "synth_ecp5 -top top -noflatten -run map_cells:",
    "gowin": "synth_gowin -top top -noflatten -noiopads -run :map_luts\nabc -lut 4\nclean\n"
             "synth_gowin -top top -noflatten -noiopads -run map_cells:",
}
#: Cell kinds counted per family: (LUTs, carry cells, flip-flop prefix, block RAMs, DSPs).
KINDS = {
    "ice40": (("SB_LUT4",), ("SB_CARRY",), "SB_DFF", ("SB_RAM40_4K",), ("SB_MAC16",)),
    "ecp5": (("LUT4",), ("CCU2C",), "TRELLIS_FF", ("DP16KD",), ("MULT18X18D",)),
    "gowin": (("LUT1", "LUT2", "LUT3", "LUT4"), ("ALU",), "DFF",
              ("SDPB", "DPB", "SP", "SDPX9B", "DPX9B", "SPX9"), ("MULT9X9", "MULT18X18")),
}


def _modules(log: str) -> dict[str, dict[str, int]]:
    """Cell counts per module from the last ``stat`` in a Yosys log."""
    text = log[log.rfind("Printing statistics"):]
    out = {}
    for block in re.split(r"\n=== ", text)[1:]:
        name = block.split(" ===")[0].strip()
        cells = {}
        for m in re.finditer(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(\$?[A-Za-z_]\w*)\s*$|"
                             r"^\s+(\$?[A-Za-z_]\w*)\s+(\d+)\s*$", block, re.M):
            kind, n = (m.group(2), m.group(1)) if m.group(2) else (m.group(3), m.group(4))
            cells[kind] = int(n)
        if name != "design hierarchy":
            out[name] = cells
    return out


def _unit(path: str) -> str:
    """The line a module counts in: below the engine, its first level, lane suffixes removed
    (``top.link.engine.qe_8_3`` -> ``engine.qe``); above it, the module itself."""
    parts = path.split(".")
    if "engine" in parts:
        i = parts.index("engine")
        if len(parts) == i + 1:
            return "engine (control, counters, muxes)"
        return "engine." + re.sub(r"(_\d+)+$", "", parts[i + 1])
    return ".".join(parts[1:]) or "top"


def _lanes(path: str) -> str | None:
    """The first-level engine unit instance a module belongs to (to count repeated units)."""
    parts = path.split(".")
    if "engine" in parts and len(parts) > parts.index("engine") + 1:
        return parts[parts.index("engine") + 1]
    return None


def split(modules: dict[str, dict[str, int]], family: str) -> list[dict]:
    """The table's rows: per unit, its LUTs, carry cells, flip-flops, block RAMs, DSPs and how
    many instances it has; largest first."""
    luts, carries, ff, rams, dsps = KINDS[family]
    rows: dict[str, dict] = {}
    for path, cells in modules.items():
        row = rows.setdefault(_unit(path), {"unit": _unit(path), "instances": set(), "lut": 0,
                                             "carry": 0, "ff": 0, "bram": 0, "dsp": 0})
        inst = _lanes(path)
        if inst:
            row["instances"].add(inst)
        row["lut"] += sum(cells.get(k, 0) for k in luts)
        row["carry"] += sum(cells.get(k, 0) for k in carries)
        row["ff"] += sum(v for k, v in cells.items() if k.startswith(ff))
        row["bram"] += sum(cells.get(k, 0) for k in rams)
        row["dsp"] += sum(cells.get(k, 0) for k in dsps)
    for row in rows.values():
        row["instances"] = max(1, len(row["instances"]))
    return sorted(rows.values(), key=lambda r: -(r["lut"] + r["carry"]))


def synthesize(board_name: str, config: Config | None, folder: Path) -> dict:
    """Write and synthesize the design hierarchically in ``folder``; return the result."""
    board = get_board(board_name)
    config = config or board.default_config
    write_design(board, config, folder, clock_mhz=board.default_clock_mhz,
                 baud=board.link_baud)
    script = folder / "area.ys"
    script.write_text(f"read_rtlil top.il\n{SYNTH[board.family]}\nstat\n")
    yosys = tool_command(*TOOLS[board.family][0])
    t0 = time.monotonic()
    run = subprocess.run([yosys, "-q", "-l", "area.log", "area.ys"], cwd=folder,
                         capture_output=True, text=True)
    log = (folder / "area.log").read_text() if (folder / "area.log").exists() else ""
    if run.returncode != 0:
        raise IntrainError(f"synthesis failed ({folder / 'area.log'}): "
                           f"{(run.stderr or log).strip().splitlines()[-1:]}")
    rows = split(_modules(log), board.family)
    total = {k: sum(r[k] for r in rows) for k in ("lut", "carry", "ff", "bram", "dsp")}
    return {"board": board.name, "family": board.family, "config": config.to_dict(),
            "macs": config.array_rows * config.array_cols, "synth": SYNTH[board.family],
            "seconds": round(time.monotonic() - t0, 1), "total": total, "units": rows}


def _print(result: dict) -> None:
    total = result["total"]
    sites = total["lut"] + total["carry"]
    print(f"{result['board']}: {'-'.join(map(str, result['config']['layers']))}, "
          f"{result['macs']} MACs; {total['lut']:,} LUT + {total['carry']:,} carry, "
          f"{total['ff']:,} FF, {total['bram']} BRAM, {total['dsp']} DSP (hierarchical)")
    print("| unit | x | LUT | carry | FF | BRAM | DSP | share of LUT+carry |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["units"]:
        share = (r["lut"] + r["carry"]) / sites if sites else 0.0
        print(f"| {r['unit']} | {r['instances']} | {r['lut']:,} | {r['carry']:,} | "
              f"{r['ff']:,} | {r['bram']} | {r['dsp']} | {share:.1%} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("board", help="the board (intrain boards lists them)")
    parser.add_argument("--config", type=Path, help="a configuration file (default: the "
                        "board's default configuration)")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--keep", type=Path, help="synthesize in this folder and keep it")
    args = parser.parse_args(argv)
    try:
        config = Config.load(args.config) if args.config else None
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            result = synthesize(args.board, config, args.keep)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result = synthesize(args.board, config, Path(tmp))
    except (IntrainError, OSError) as e:
        print(f"area: {e}", file=sys.stderr)
        return 1
    _print(result)
    suffix = f"_{args.config.stem}" if args.config else ""
    out = args.json or RESULTS / f"area_{result['board']}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
