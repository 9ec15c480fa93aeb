"""The LUT model against packed designs: the board top of each configuration below, synthesized
and packed as ``intrain build`` does (Yosys, then nextpnr with ``--pack-only``), its packed logic
cells (iCE40) or TRELLIS_COMB (ECP5) beside :meth:`EngineGeometry.estimate_luts`.

Packing stops before placement, so a design larger than the part is measured too (the point of
the fit check); on these families the packed count is the one the placed build reports. The
Gowin figures of the model come from full builds instead (``bench/fpga.py``): nextpnr's packing
count there is not the LUT4 + ALU count of the placed design. Half a minute per iCE40 point, a
few minutes per ECP5 one; not part of the test suite.

    python bench/luts.py [--family ice40|ecp5] [--json FILE]

The results go to ``bench/results/luts.json`` unless ``--json`` says otherwise.
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
from intrain.hdl.engine import EngineGeometry

DEFAULT_JSON = Path(__file__).parent / "results" / "luts.json"
_1X1 = dict(array_rows=1, array_cols=1, rng_lanes=1)
_2X2 = dict(array_rows=2, array_cols=2, rng_lanes=2)

#: ``(board, config fields)``: one to three weight layers, one and two lanes, convolutions,
#: deeper banks.
POINTS = [
    ("icebreaker", dict(layers=(64, 10), batch_size=16, acc_bits=20, **_1X1)),
    ("icebreaker", dict(layers=(64, 8, 10), batch_size=16, acc_bits=20, **_1X1)),
    ("icebreaker", dict(layers=(64, 8, 8, 10), batch_size=16, acc_bits=20, **_1X1)),
    ("icebreaker", dict(layers=(64, 10), batch_size=16, acc_bits=20, **_2X2)),
    ("icebreaker", dict(layers=(64, 8, 10), batch_size=16, acc_bits=20, **_2X2)),
    ("icebreaker", dict(layers="1x8x8,1C3,10", batch_size=1, acc_bits=21, **_1X1)),
    ("icebreaker", dict(layers="1x8x8,2C3,4C3,10", batch_size=1, acc_bits=21, **_1X1)),
    # Deeper banks: batch 8, wider inputs, MNIST-size ones with W1 and A0 in SPRAM.
    ("icebreaker", dict(layers=(64, 24, 10), batch_size=8, acc_bits=20, phase_counters=False,
                        **_1X1)),
    ("icebreaker", dict(layers=(256, 32, 10), batch_size=8, acc_bits=18, phase_counters=False,
                        recompute_gradients=(1,), **_1X1)),
    ("icebreaker", dict(layers=(784, 32, 10), batch_size=8, acc_bits=18, phase_counters=False,
                        recompute_gradients=(1,), spram=("W1", "A0"), **_1X1)),
    ("icebreaker", dict(layers=(784, 96, 10), batch_size=16, acc_bits=20, phase_counters=False,
                        recompute_gradients=(1,), spram=("W1", "A0"), **_1X1)),
    ("ulx3s-85f", dict(layers=(64, 10), batch_size=16, **_2X2)),
    ("ulx3s-85f", dict(layers=(64, 32, 32, 10), batch_size=16, **_2X2)),
]

#: nextpnr's arguments to pack a board top (the tools are ``intrain build``'s, ``TOOLS``), and
#: the cell whose count is the LUT figure.
PACK = {
    "ice40": (["--up5k", "--package", "sg48", "--json", "top.json",
               "--pcf", "top.pcf", "--pcf-allow-unconstrained", "--pack-only"], "ICESTORM_LC"),
    "ecp5": (["--85k", "--package", "CABGA381", "--speed", "6",
              "--json", "top.json", "--lpf", "top.lpf", "--lpf-allow-unconstrained",
              "--pack-only"], "TRELLIS_COMB"),
}


def packed_luts(board_name: str, config: Config, folder: Path) -> int:
    """The packed LUT figure of ``config``'s board top (see :data:`PACK`)."""
    board = get_board(board_name)
    argv, cell = PACK[board.family]
    write_design(board, config, folder, clock_mhz=board.default_clock_mhz, baud=board.link_baud)
    yosys, nextpnr = (tool_command(*tool) for tool in TOOLS[board.family][:2])
    subprocess.run([yosys, "-q", "-l", "top.rpt", "top.ys"], cwd=folder, check=True)
    proc = subprocess.run([nextpnr, *argv], cwd=folder, capture_output=True, text=True,
                          check=False)
    match = re.search(rf"{cell}:\s+(\d+)/", proc.stderr)
    if match is None:
        raise RuntimeError(f"nextpnr did not pack {board_name}: {proc.stderr[-2000:]}")
    return int(match.group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=sorted(PACK), help="only this family's points")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write them")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, fields) in enumerate(POINTS):
            family = get_board(name).family
            if args.family and family != args.family:
                continue
            config = Config(**fields)
            t0 = time.monotonic()
            measured = packed_luts(name, config, Path(tmp) / str(i))
            estimate = EngineGeometry(config).estimate_luts(family)
            rows.append({"board": name, "family": family, "cell": PACK[family][1],
                         "layers": "-".join(map(str, config.layers)),
                         "array": f"{config.array_rows}x{config.array_cols}",
                         "batch_size": config.batch_size, "packed": measured,
                         "estimate": estimate,
                         "error": round((estimate - measured) / measured, 4),
                         "seconds": round(time.monotonic() - t0, 1)})
            r = rows[-1]
            print(f"{name:12} {r['layers']:22} {r['array']:>4} {measured:7,} {estimate:7,} "
                  f"{100 * r['error']:+6.1f}%", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "luts", "points": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
