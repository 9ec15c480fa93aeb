# amaranth: UnusedElaboratable=no
"""RunCounters: busy cycles and MAC-cycles of a run against a count kept in Python, per phase
and in all, with ``clear`` winning over a count in its cycle."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from intrain.hdl.engine import Phase
from intrain.hdl.engine.counters import RunCounters


@pytest.mark.parametrize("per_phase", [False, True])
def test_counters_follow_busy_macs_and_phase(per_phase):
    dut = RunCounters(12, 16, range(17), per_phase=per_phase)
    rng = np.random.default_rng(int(per_phase))
    schedule = [(int(rng.random() < 0.05), int(rng.random() < 0.8), int(rng.integers(0, 17)),
                 Phase(int(rng.integers(0, len(Phase))))) for _ in range(300)]

    async def testbench(ctx):
        cycles = macs = 0
        pc, pm = [0] * len(Phase), [0] * len(Phase)
        pending = None   # (MACs, phase) of the last cycle, added in this one
        for clear, busy, n, ph in schedule:
            ctx.set(dut.clear, clear)
            ctx.set(dut.busy, busy)
            ctx.set(dut.macs, n)
            if per_phase:
                ctx.set(dut.phase, ph)
            await ctx.tick()
            if pending is not None:
                macs += pending[0]
                pm[pending[1].value] += pending[0]
            cycles += busy
            pc[ph.value] += busy
            if clear:
                cycles = macs = 0
                pc, pm = [0] * len(Phase), [0] * len(Phase)
            pending = (n if busy else 0, ph)
            assert ctx.get(dut.cycles) == cycles
            assert ctx.get(dut.mac_cycles) == macs
            if per_phase:
                assert [ctx.get(dut.phase_cycles[p.value]) for p in Phase] == pc
                assert [ctx.get(dut.phase_mac_cycles[p.value]) for p in Phase] == pm
        assert cycles > 0 and macs > 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_counters_without_phases_have_no_phase_ports():
    dut = RunCounters(8, 8, range(5), per_phase=False)
    assert "phase" not in dut.signature.members
    assert "phase_cycles" not in dut.signature.members
