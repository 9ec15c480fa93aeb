# amaranth: UnusedElaboratable=no
"""bench/ternary.py: the mixed engine's step from the cycle model (forward and backward products
on a ternary array, the rest on the DSP array) and the folded arrays it builds."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator
from bench_helpers import load_bench

from intrain.boards.registry import get_board
from intrain.golden import matmul

ternary = load_bench("ternary")
CONFIG = get_board("ulx3s-85f").default_config


def test_a_ternary_array_as_large_as_the_dsp_array_gains_nothing():
    for rows in (8, 12):
        base = sum(ternary._step(CONFIG, rows).values())
        assert ternary.mixed_cycles(CONFIG, rows, rows) == base


def test_the_gain_grows_with_the_ternary_array_up_to_the_gradients_bound():
    rows = ternary.model(CONFIG)
    for dsp in ("8x8", "12x12"):
        gains = [r["speedup_same_clock"] for r in rows if r["dsp_array"] == dsp]
        assert gains == sorted(gains) and gains[-1] > gains[-2]
        # The first layer's gradient stays on the DSP array: under 2x at one clock.
        assert gains[-1] < 2


def test_the_folded_array_folds_every_output_row():
    dut = ternary.FoldedArray(2, 3, "ternary")
    rng = np.random.default_rng(1)
    a, b = rng.integers(-1, 2, (2, 4)), rng.integers(-128, 128, (4, 3))
    want = matmul.tile_matmul(a, b)
    folds = []

    async def bench(ctx):
        for k in range(4):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"a": [int(v) for v in a[:, k]],
                                    "b": [int(v) for v in b[k, :]],
                                    "first": k == 0, "last": k == 3})
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(20):
            await ctx.tick()
            if ctx.get(dut.fold_valid):
                folds.append(ctx.get(dut.fold))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    width = ternary.ACC_WIDTH
    assert len(folds) == 2
    for r, fold in enumerate(folds):
        # The output row as its layout packs it: the row (1 bit), the 3 values, ``last``.
        values = sum((int(v) & ((1 << width) - 1)) << (width * c) for c, v in enumerate(want[r]))
        packed, expect = r | values << 1 | (r == 1) << (1 + 3 * width), 0
        while packed:
            expect ^= packed & 0xFFFFFFFF
            packed >>= 32
        assert fold == expect, f"row {r}"
