# amaranth: UnusedElaboratable=no
"""UpdateLanes against the golden model's QG and update (``stochastic_round`` with the shift
``RL2(max |G|) - lam``, then ``update_weights``), every lane of every cycle, for each weight
format, with shifts inside the rounders' range and clamped at both of its ends."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from intrain.config import Config
from intrain.golden import arith
from intrain.hdl.engine.update import UpdateLanes

TERNARY = Config(layers=(6, 4, 3), bits="2-8-8-8").plan[0]   # w_max 64, forward view sign
INT8 = Config(layers=(6, 4, 3), bits="8-8-8-8").plan[0]      # w_max 127
G_WIDTH, DRAW_BITS, LANES = 20, 16, 3


def run_lanes(unit, rows, rl2, lam):
    """Feed ``rows`` of ``(g, u, w)`` lane values one per cycle; the new weights per format of
    each row, taken :meth:`UpdateLanes.cycles` edges after its input."""
    got = []

    async def testbench(ctx):
        ctx.set(unit.rl2, rl2)
        ctx.set(unit.lam, lam)
        outs = []
        for t in range(len(rows) + unit.cycles()):
            if t < len(rows):
                g, u, w = rows[t]
                ctx.set(unit.valid, 1)
                for k in range(LANES):
                    ctx.set(unit.g[k], int(g[k]))
                    ctx.set(unit.u[k], int(u[k]))
                    ctx.set(unit.w[k], int(w[k]))
            else:
                ctx.set(unit.valid, 0)
            await ctx.tick()
            outs.append([[ctx.get(unit.w_new[f][k]) for k in range(LANES)] for f in range(2)])
        got.extend(outs[unit.cycles() - 1:][:len(rows)])

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return got


@pytest.mark.parametrize("rl2,lam", [(12, 2), (3, -4), (0, 0), (19, -20), (2, 30), (15, 6)])
def test_update_lanes_equal_the_golden_update_in_every_lane(rl2, lam):
    unit = UpdateLanes(LANES, G_WIDTH, DRAW_BITS, 9, [TERNARY, INT8], 5)
    rng = np.random.default_rng(rl2 * 100 + lam)
    g_lim = 1 << (G_WIDTH - 1)
    rows = [(rng.integers(-g_lim, g_lim, LANES), rng.integers(0, 1 << DRAW_BITS, LANES),
             rng.integers(-TERNARY.w_max, TERNARY.w_max + 1, LANES)) for _ in range(24)]
    rows.append(([g_lim - 1, -g_lim, 0], [0, (1 << DRAW_BITS) - 1, 7], [64, -64, 0]))
    got = run_lanes(unit, rows, rl2, lam)
    for t, (g, u, w) in enumerate(rows):
        dw = arith.stochastic_round(np.asarray(g, dtype=np.int64), rl2 - lam,
                                    np.asarray(u, dtype=np.int64), DRAW_BITS)
        for plan in (TERNARY, INT8):
            want = arith.update_weights(np.asarray(w), dw, plan.w_max)
            assert got[t][unit.format_of(plan)] == [int(v) for v in want], \
                f"row {t}, w_max {plan.w_max}: g {list(g)}, u {list(u)}, w {list(w)}"


def test_layers_of_one_format_share_its_updaters():
    unit = UpdateLanes(2, G_WIDTH, DRAW_BITS, 9, [TERNARY, INT8, TERNARY], 5)
    assert unit.format_of(TERNARY) == 0 and unit.format_of(INT8) == 1
    assert len(unit.w_new) == 2


def test_update_lanes_reject_no_layers_and_bad_widths():
    with pytest.raises(ValueError, match="at least one layer"):
        UpdateLanes(2, G_WIDTH, DRAW_BITS, 9, [], 5)
    with pytest.raises(ValueError, match="Lanes must be at least 1"):
        UpdateLanes(0, G_WIDTH, DRAW_BITS, 9, [TERNARY], 5)
    with pytest.raises(TypeError, match="Gradient width must be an integer"):
        UpdateLanes(2, 20.0, DRAW_BITS, 9, [TERNARY], 5)
