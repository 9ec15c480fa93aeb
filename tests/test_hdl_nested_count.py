# amaranth: UnusedElaboratable=no
"""nested_count: counters inner to outer, each stepping until its end, then carrying; bases
follow their counter; the returned condition marks the last count of the nest."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.sim import Simulator

from intrain.hdl._util import Level, nested_count


def test_a_nest_counts_like_nested_loops_and_flags_its_last_count():
    m = Module()
    en = Signal()
    k, c, r, base = Signal(4), Signal(5), Signal(6), Signal(8)
    # k: 0..2, c: 0, 2, 4 (step 2 up to 5 columns), r: 0..1 with a base of 7 per row
    last = nested_count(m, en, [Level(k, 1, k == 2), Level(c, 2, c + 2 >= 5),
                                Level(r, 1, r + 1 >= 2, ((base, 7),))])
    want = [(kk, cc, rr) for rr in range(2) for cc in (0, 2, 4) for kk in range(3)]

    async def testbench(ctx):
        got, lasts = [], []
        for t in range(3 * len(want) + 4):
            on = t % 3 != 1   # idle cycles hold the counters
            ctx.set(en, on)
            if on:
                got.append((ctx.get(k), ctx.get(c), ctx.get(r)))
                lasts.append(ctx.get(last))
                assert ctx.get(base) == 7 * ctx.get(r)
            else:
                assert not ctx.get(last)
            await ctx.tick()
        n = len(want)
        assert got[:2 * n] == want + want   # wraps to the start after the last count
        assert [i for i, v in enumerate(lasts) if v] == [n - 1, 2 * n - 1]

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
