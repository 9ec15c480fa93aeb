# amaranth: UnusedElaboratable=no
"""MemoryPorts: a memory's ports follow the stage access whose condition holds while the engine
is busy, the host's request otherwise, and two accesses holding in one cycle are recorded."""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.sim import Simulator

from intrain.hdl.engine.memory_map import MemoryPorts, Read, Write
from intrain.hdl.transpose_memory import SliceMode, TransposeMemory


def build(host=True):
    m = Module()
    mem = m.submodules.mem = TransposeMemory(signed(8), 4, 4, 2)
    ports = MemoryPorts([mem])
    busy, a, b, w = Signal(), Signal(), Signal(), Signal()
    ports.read(mem, a, SliceMode.ROW, 1, 0)
    ports.read(mem, b, SliceMode.COLUMN, 2, 2)
    ports.write(mem, w, SliceMode.ROW, 3, 2, 0b11, [5])   # lane 1 missing: written as 0
    host_read = Read(Signal(name="h_rd"), SliceMode.ROW, 0, 2) if host else None
    host_write = Write(Signal(name="h_wr"), SliceMode.COLUMN, 1, 1, 0b01, [7, 9]) \
        if host else None
    ports.connect(m, mem, busy, host_read, host_write)
    ports.build_conflict(m)
    return m, mem, ports, busy, a, b, w, host_read, host_write


def run(m, testbench):
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_the_stage_whose_condition_holds_drives_the_ports_while_busy():
    m, mem, ports, busy, a, b, w, host_read, host_write = build()

    async def testbench(ctx):
        ctx.set(busy, 1)
        ctx.set(host_read.when, 1)   # ignored while busy
        ctx.set(b, 1)
        assert ctx.get(mem.read.valid) == 1
        assert (ctx.get(mem.read.payload.mode), ctx.get(mem.read.payload.row),
                ctx.get(mem.read.payload.col)) == (SliceMode.COLUMN, 2, 2)
        ctx.set(w, 1)
        assert ctx.get(mem.write.valid) == 1
        assert [ctx.get(mem.write.payload.data[k]) for k in range(2)] == [5, 0]
        assert ctx.get(mem.write.payload.mask) == 0b11
        await ctx.tick()
        assert not ctx.get(ports.conflict)
        ctx.set(b, 0)
        ctx.set(w, 0)
        assert ctx.get(mem.read.valid) == 0 and ctx.get(mem.write.valid) == 0

    run(m, testbench)


def test_the_host_drives_the_ports_while_idle_and_a_memory_without_host_stays_idle():
    m, mem, ports, busy, a, b, w, host_read, host_write = build()

    async def testbench(ctx):
        ctx.set(a, 1)   # a stage's condition outside a run: ignored
        ctx.set(host_write.when, 1)
        assert ctx.get(mem.read.valid) == 0
        assert ctx.get(mem.write.valid) == 1
        assert (ctx.get(mem.write.payload.mode), ctx.get(mem.write.payload.row),
                ctx.get(mem.write.payload.col)) == (SliceMode.COLUMN, 1, 1)
        assert [ctx.get(mem.write.payload.data[k]) for k in range(2)] == [7, 9]

    run(m, testbench)
    m, mem, *_ = build(host=False)

    async def idle(ctx):
        assert ctx.get(mem.read.valid) == 0 and ctx.get(mem.write.valid) == 0

    run(m, idle)


def test_two_accesses_of_one_port_in_a_cycle_are_recorded():
    m, mem, ports, busy, a, b, w, *_ = build()

    async def testbench(ctx):
        ctx.set(busy, 1)
        ctx.set(a, 1)
        await ctx.tick()
        assert not ctx.get(ports.conflict)
        ctx.set(b, 1)   # both reads at once: the first wins, the conflict stays recorded
        assert ctx.get(mem.read.payload.row) == 1
        await ctx.tick()
        ctx.set(a, 0)
        ctx.set(b, 0)
        await ctx.tick()
        assert ctx.get(ports.conflict)

    run(m, testbench)
