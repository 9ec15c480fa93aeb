# amaranth: UnusedElaboratable=no
"""Ternary processing elements against DSP ones on the ECP5-85F, and what an engine that runs
the products with ternary weights on them could gain.

With 2-bit (ternary) weights the forward product ``T . A`` and the backward product ``E . T``
need no multiplier: ``SystolicArray(dsp="ternary")`` selects ``b``, ``-b`` or 0 in the fabric.
The weight gradient ``E^T . A`` still multiplies 8-bit operands.

*Model* (the engine's cycle model, :meth:`EngineGeometry.train_phase_cycles`, no build): a
training step of the ULX3S default network with every product on an ``R x R`` DSP array, and
the same step with the forward and backward products on a ``T x T`` ternary array and the rest
(gradients, the QE passes, the updates) on the ``R x R`` DSP array, at one clock: its forward
job from the ``T x T`` geometry, each layer's gradient and backward stream split by their MACs
between the two arrays. The gradient of the first layer alone (no backward) bounds the gain.

*Builds* (``--build``): ``R x C`` arrays of each kind, synthesized, placed and routed for the
LFE5U-85F at speed grade 6 for 150 MHz with router2 (as ``bench/blocks.py`` measures blocks:
registered ports, the operands from a shift register with one serial pin; the output rows
registered, then folded into 32 bits by XOR, which the block's cells include), with their
logic cells, flip-flops, multipliers and Fmax. Minutes per array on one core.

    python bench/ternary.py [--build] [--json FILE] [--keep DIR]

The results go to ``bench/results/ternary.json`` unless ``--json`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import reduce
from pathlib import Path

from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from intrain.boards.registry import get_board
from intrain.hdl import SystolicArray
from intrain.hdl.engine import EngineGeometry

sys.path.insert(0, str(Path(__file__).parent))
from blocks import Bench, measure  # noqa: E402

DEFAULT_JSON = Path(__file__).parent / "results" / "ternary.json"
#: ``(name, rows, cols, dsp)`` of the arrays built with ``--build``.
ARRAYS = [("dsp_8x8", 8, 8, "ecp5"), ("ternary_8x8", 8, 8, "ternary"),
          ("ternary_16x16", 16, 16, "ternary")]
#: The clock nextpnr is asked for: the issue's target for the ECP5 engine.
TARGET_MHZ = 150.0
ACC_WIDTH = 24


class FoldedArray(wiring.Component):
    """A :class:`SystolicArray` whose output rows are registered, then folded into 32 bits by
    XOR (every bit of every value still drives the output), always ready: the fold has a cycle
    of its own, so the array's paths, not the fold's, set the Fmax."""

    def __init__(self, rows, cols, dsp):
        a_shape = signed(2) if dsp == "ternary" else signed(8)
        self.array = SystolicArray(rows, cols, a_shape=a_shape, acc_width=ACC_WIDTH, dsp=dsp,
                                   output_always_ready=True)   # as the engine builds it
        super().__init__({"i": In(self.array.i.signature.flip()), "fold": Out(32),
                          "fold_valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        wiring.connect(m, wiring.flipped(self.i), array.i)
        bits = Signal(len(array.o.payload.as_value()), name="row_bits")
        valid = Signal(name="row_valid")
        m.d.sync += [bits.eq(array.o.payload.as_value()), valid.eq(array.o.valid)]
        words = [bits[k:k + 32] for k in range(0, len(bits), 32)]
        m.d.comb += [array.o.ready.eq(1), self.fold.eq(reduce(lambda x, y: x ^ y, words)),
                     self.fold_valid.eq(valid)]
        return m


def _step(config, rows: int) -> dict[str, int]:
    return EngineGeometry(config.replace(array_rows=rows, array_cols=rows),
                          "ecp5").train_phase_cycles(config.batch_size)


def mixed_cycles(config, dsp_rows: int, ternary_rows: int | None) -> int:
    """Cycles of a training step with forward and backward products on a ternary array of
    ``ternary_rows`` (None: infinitely many PEs) and the rest on the DSP array."""
    plan = config.plan
    dsp = _step(config, dsp_rows)
    tern = _step(config, ternary_rows) if ternary_rows else {k: 0 for k in dsp}
    total = 0
    for part, cycles in dsp.items():
        if part == "forward":
            total += tern[part]
        elif part.startswith("gradient_backward_"):
            p = plan[int(part.rsplit("_", 1)[1]) - 1]
            backward = p.index > 1   # the first layer sends no error back
            share = 0.5 if backward else 0.0   # both products have n_in * n_out * batch MACs
            total += round((1 - share) * cycles + share * tern[part])
        else:
            total += cycles
    return total


def model(config) -> list[dict]:
    rows = []
    for dsp_rows in (8, 12):
        base = sum(_step(config, dsp_rows).values())
        for ternary_rows in (8, 16, 24, 32, None):
            cycles = mixed_cycles(config, dsp_rows, ternary_rows)
            rows.append({"dsp_array": f"{dsp_rows}x{dsp_rows}",
                         "ternary_array": f"{ternary_rows}x{ternary_rows}" if ternary_rows
                         else "unbounded",
                         "dsp_only_cycles": base, "mixed_cycles": cycles,
                         "speedup_same_clock": round(base / cycles, 3)})
    return rows


def build(folder: Path) -> list[dict]:
    out = []
    for name, rows, cols, dsp in ARRAYS:
        bench = Bench(name, f"SystolicArray({rows}, {cols}, dsp={dsp!r}) folded",
                      lambda _c, r=rows, c=cols, d=dsp: FoldedArray(r, c, d),
                      serial=("i__payload",))
        print(f"building {name} ...", file=sys.stderr, flush=True)
        r = measure(bench, None, TARGET_MHZ, 1, folder / name, router="router2")
        r["pes"] = rows * cols
        r["comb_per_pe"] = round((r["lut4"] + 2 * r["ccu2c"]) / (rows * cols), 1)
        out.append(r)
        print(f"{name:15} {r['pes']:4} PEs  LUT4 {r['lut4']:6}  CCU2C {r['ccu2c']:5}  "
              f"FF {r['ff']:6}  DSP {r['dsp']:4}  {r['comb_per_pe']:6} LUTs/PE  "
              f"Fmax {r['fmax_mhz']} MHz", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="store_true", help="also build the arrays (minutes)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--keep", type=Path, help="keep the builds in this folder")
    args = ap.parse_args(argv)
    config = get_board("ulx3s-85f").default_config
    rows = model(config)
    print(f"training step of {'-'.join(map(str, config.layers))} at batch "
          f"{config.batch_size}, one clock: forward and backward on the ternary array")
    print(f"{'DSP array':>9} {'ternary':>10} {'DSP only':>9} {'mixed':>8} {'speedup':>8}")
    for r in rows:
        print(f"{r['dsp_array']:>9} {r['ternary_array']:>10} {r['dsp_only_cycles']:9,} "
              f"{r['mixed_cycles']:8,} {r['speedup_same_clock']:7.2f}x")
    payload = {"network": "-".join(map(str, config.layers)), "batch": config.batch_size,
               "model": rows}
    if args.build:
        with tempfile.TemporaryDirectory(prefix="intrain-ternary-") as tmp:
            payload["arrays"] = build(args.keep or Path(tmp))
    elif args.json.is_file():   # keep the builds of an earlier run
        payload["arrays"] = json.loads(args.json.read_text()).get("arrays", [])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
