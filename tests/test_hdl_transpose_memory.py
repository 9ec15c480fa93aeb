# amaranth: UnusedElaboratable=no
"""TransposeMemory against a NumPy matrix: random interleavings of row and column slice writes
and reads, under random stalls on every stream, element by element."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth import Module, Shape, Signal, signed, unsigned
from amaranth.back import rtlil, verilog
from amaranth.hdl import Fragment, MemoryInstance
from amaranth.sim import Simulator

from intrain.hdl.transpose_memory import SliceMode, TransposeMemory, divmod_const, mul_const

ROW, COLUMN = SliceMode.ROW, SliceMode.COLUMN


# -- the reference model ----------------------------------------------------------------------
def _elements(dut, mode, row, col):
    """The ``(r, c)`` of each lane of a slice, or ``None`` where it lies outside the matrix."""
    out = []
    for k in range(dut.lanes):
        r, c = (row + k, col) if mode == COLUMN else (row, col + k)
        out.append((r, c) if r < dut.rows and c < dut.cols else None)
    return out


def _model_read(dut, matrix, mode, row, col):
    return [0 if e is None else int(matrix[e]) for e in _elements(dut, mode, row, col)]


def _model_write(dut, matrix, op):
    for k, e in enumerate(_elements(dut, op["mode"], op["row"], op["col"])):
        if e is not None and (op["mask"] >> k) & 1:
            matrix[e] = op["data"][k]


# -- the testbench ----------------------------------------------------------------------------
@dataclass
class _Run:
    reads: list = field(default_factory=list)
    """``(cycle accepted, request, expected slice)`` for every read, in order."""
    outputs: list = field(default_factory=list)
    """``(cycle taken, slice)`` for every output transfer."""
    write_cycles: list = field(default_factory=list)
    matrix: np.ndarray | None = None


def _run(dut, writes, reads, *, seed=0, write_prob=0.5, read_prob=0.7, ready_prob=0.7,
         reads_after_writes=False, drain=12, sim_top=None, after=None):
    """Stream ``writes`` and ``reads`` into ``dut`` at random, take ``read_data`` at random and
    check every slice against the model: a read sees every write accepted at an earlier edge and
    none accepted at the same or a later one. With ``reads_after_writes``, no read is presented
    before the last write has been accepted."""
    rng = random.Random(seed)
    run = _Run(matrix=np.zeros((dut.rows, dut.cols), dtype=np.int64))
    max_cycles = 200 + 4 * (len(writes) + len(reads)) / min(write_prob, read_prob, ready_prob)

    async def testbench(ctx):
        w = r = 0
        w_on = r_on = False
        cycle = 0
        expected = []
        while w < len(writes) or r < len(reads) or expected:
            assert cycle < max_cycles, f"timeout: {w} writes, {r} reads, {len(run.outputs)} out"
            if not w_on and w < len(writes) and rng.random() < write_prob:
                ctx.set(dut.write.payload, writes[w])
                ctx.set(dut.write.valid, 1)
                w_on = True
            reads_held = reads_after_writes and w < len(writes)
            if not r_on and not reads_held and r < len(reads) and rng.random() < read_prob:
                ctx.set(dut.read.payload, reads[r])
                ctx.set(dut.read.valid, 1)
                r_on = True
            ctx.set(dut.read_data.ready, rng.random() < ready_prob)
            (_, _, w_valid, w_ready, r_valid, r_ready, o_valid, o_ready,
             payload) = await ctx.tick().sample(
                dut.write.valid, dut.write.ready, dut.read.valid, dut.read.ready,
                dut.read_data.valid, dut.read_data.ready, dut.read_data.payload)
            if r_valid and r_ready:  # before this edge's write: the read sees the old contents
                req = reads[r]
                want = _model_read(dut, run.matrix, req["mode"], req["row"], req["col"])
                run.reads.append((cycle, req, want))
                expected.append(want)
                r += 1
                r_on = False
                ctx.set(dut.read.valid, 0)
            if w_valid and w_ready:
                _model_write(dut, run.matrix, writes[w])
                run.write_cycles.append(cycle)
                w += 1
                w_on = False
                ctx.set(dut.write.valid, 0)
            if o_valid and o_ready:
                got = [int(v) for v in payload]
                assert expected, f"extra output {got} in cycle {cycle}"
                want = expected.pop(0)
                n = len(run.outputs)
                assert got == want, f"read {n} {run.reads[n][1]}: got {got}, want {want}"
                run.outputs.append((cycle, got))
            cycle += 1
        ctx.set(dut.read_data.ready, 1)
        for _ in range(drain):
            _, _, o_valid = await ctx.tick().sample(dut.read_data.valid)
            assert not o_valid, "read_data valid after the last expected slice"
        if after is not None:
            await after(ctx)

    sim = Simulator(dut if sim_top is None else sim_top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(run.outputs) == len(reads)
    return run


def _field_max(n):
    """The largest value a ``range(n)`` field holds."""
    return (1 << Shape.cast(range(n)).width) - 1


def _start(rng, dut, mode):
    """A first element: mostly inside, often at an edge, sometimes outside the matrix."""
    roll = rng.random()
    if roll < 0.08:
        return rng.randint(0, _field_max(dut.rows)), rng.randint(0, _field_max(dut.cols))
    if roll < 0.4:  # the slice runs past the edge
        if mode == ROW:
            return rng.randrange(dut.rows), max(0, dut.cols - rng.randint(1, dut.lanes))
        return max(0, dut.rows - rng.randint(1, dut.lanes)), rng.randrange(dut.cols)
    return rng.randrange(dut.rows), rng.randrange(dut.cols)


def _random_ops(dut, n_writes, n_reads, seed):
    rng = random.Random(seed)
    lo, hi = (-(1 << (dut.shape.width - 1)), (1 << (dut.shape.width - 1)) - 1) \
        if dut.shape.signed else (0, (1 << dut.shape.width) - 1)
    full = (1 << dut.lanes) - 1
    writes, reads = [], []
    for _ in range(n_writes):
        mode = rng.choice([ROW, COLUMN])
        row, col = _start(rng, dut, mode)
        mask = full if rng.random() < 0.6 else rng.randint(0, full)
        data = [rng.choice([lo, hi, rng.randint(lo, hi)]) for _ in range(dut.lanes)]
        writes.append({"mode": mode, "row": row, "col": col, "data": data, "mask": mask})
    for _ in range(n_reads):
        mode = rng.choice([ROW, COLUMN])
        row, col = _start(rng, dut, mode)
        reads.append({"mode": mode, "row": row, "col": col})
    return writes, reads


# -- tests ------------------------------------------------------------------------------------
#: (registered, address_stage): the three pipelines.
STAGES = [(False, False), (True, False), (True, True)]


def test_constant_multiplication_is_exact_and_takes_no_multiplier():
    x = Signal(7)
    outs = {}
    m = Module()
    for c in [*range(70), 255, 341, 342, 683, 12345]:
        outs[c] = Signal(24, name=f"p_{c}")
        m.d.comb += outs[c].eq(mul_const(x, c))
    text = rtlil.convert(m, ports=[x, *outs.values()])
    assert "$mul" not in text

    async def tb(ctx):
        for v in range(128):
            ctx.set(x, v)
            for c, p in outs.items():
                assert ctx.get(p) == v * c, (v, c)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


def test_memory_addressing_takes_no_multiplier():
    text = rtlil.convert(TransposeMemory(signed(8), 30, 21, 12), name="transpose_memory")
    assert "$mul" not in text and "$div" not in text and "$mod" not in text


@pytest.mark.parametrize(("shape", "rows", "cols", "lanes"), [
    (signed(8), 10, 7, 4),     # non-square, neither size a multiple of lanes
    (signed(8), 5, 6, 1),      # one lane: a plain memory
    (signed(20), 7, 11, 3),    # wide gradients, lanes not a power of two
    (signed(8), 8, 8, 8),      # one slice is a whole row or column
    (unsigned(5), 3, 2, 5),    # more lanes than rows or columns
])
@pytest.mark.parametrize("registered, address_stage", STAGES)
def test_random_row_and_column_traffic_matches_model_under_stalls(shape, rows, cols, lanes,
                                                                  registered, address_stage):
    dut = TransposeMemory(shape, rows, cols, lanes, registered=registered,
                          address_stage=address_stage)
    seed = rows * 100 + cols * 10 + lanes
    writes, reads = _random_ops(dut, 150, 200, seed)
    # Registered requests keep the read-after-write rules while read_data is always ready.
    run = _run(dut, writes, reads, seed=seed, ready_prob=1 if registered else 0.7)
    # The traffic did test something: reads of written, non-zero data, and at the edges.
    assert sum(any(v for v in want) for _, _, want in run.reads) > len(reads) // 2
    for (a, _, _), (b, _) in zip(run.reads, run.outputs):
        assert b - a >= dut.latency


@pytest.mark.parametrize("address_stage", [False, True])
def test_registered_requests_lose_nothing_under_back_pressure(address_stage):
    """Every slice comes back once, in order, under back-pressure (the data of a read that
    waits in the request register may include writes accepted while it waits, so the reads
    here follow every write)."""
    dut = TransposeMemory(signed(8), 10, 7, 4, registered=True, address_stage=address_stage)
    writes, reads = _random_ops(dut, 60, 120, 5)
    run = _run(dut, writes, reads, seed=5, ready_prob=0.4, reads_after_writes=True)
    assert len(run.outputs) == len(reads)


@pytest.mark.parametrize(("registered", "address_stage", "latency"),
                         [(False, False, 2), (True, False, 3), (True, True, 4)])
def test_full_throughput_and_exact_latency_without_stalls(registered, address_stage, latency):
    dut = TransposeMemory(signed(8), 10, 7, 4, registered=registered,
                          address_stage=address_stage)
    assert dut.latency == latency
    writes, reads = _random_ops(dut, 60, 80, 3)
    run = _run(dut, writes, reads, write_prob=1, read_prob=1, ready_prob=1)
    assert [a for a, _, _ in run.reads] == list(range(len(reads)))
    assert run.write_cycles == list(range(len(writes)))
    assert [b - a for (a, _, _), (b, _) in zip(run.reads, run.outputs)] == [latency] * len(reads)


@pytest.mark.parametrize("registered, address_stage", STAGES)
def test_a_read_sees_a_write_accepted_one_edge_earlier_but_not_in_the_same_cycle(
        registered, address_stage):
    dut = TransposeMemory(signed(8), 6, 5, 4, registered=registered,
                          address_stage=address_stage)
    row_w = {"mode": ROW, "row": 2, "col": 1, "data": [1, 2, 3, 4], "mask": 0b1111}
    col_w = {"mode": COLUMN, "row": 1, "col": 3, "data": [-5, -6, -7, -8], "mask": 0b1111}
    col_r = {"mode": COLUMN, "row": 0, "col": 3}
    row_r = {"mode": ROW, "row": 2, "col": 1}

    async def testbench(ctx):
        ctx.set(dut.read_data.ready, 1)
        schedule = [(row_w, row_r), (col_w, row_r), (None, col_r), (None, row_r)]
        outs = []
        for w, r in schedule + [(None, None)] * max(3, dut.latency):
            ctx.set(dut.write.valid, w is not None)
            if w is not None:
                ctx.set(dut.write.payload, w)
            ctx.set(dut.read.valid, r is not None)
            if r is not None:
                ctx.set(dut.read.payload, r)
            _, _, valid, payload = await ctx.tick().sample(
                dut.read_data.valid, dut.read_data.payload)
            if valid:
                outs.append([int(v) for v in payload])
        assert outs == [
            [0, 0, 0, 0],       # accepted with the row write: the old contents
            [1, 2, 3, 4],       # one edge after it: the new ones, not yet the column write
            [0, -5, -6, -7],    # column 3 from row 0; (2, 3) was overwritten by the column
            [1, 2, -6, 4],
        ]
        assert ctx.get(dut.collided)   # the first read met the row write in the banks

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("registered, address_stage", STAGES)
def test_rows_written_by_the_host_read_back_as_columns_of_the_transpose(registered,
                                                                        address_stage):
    dut = TransposeMemory(signed(8), 9, 6, 4, registered=registered,
                          address_stage=address_stage)
    rng = np.random.default_rng(9)
    want = rng.integers(-128, 128, (dut.rows, dut.cols))
    writes = []
    for r, c in dut.slice_starts(ROW):
        data = [int(want[r, c + k]) if c + k < dut.cols else 0 for k in range(dut.lanes)]
        writes.append({"mode": ROW, "row": r, "col": c, "data": data, "mask": 0b1111})
    reads = [{"mode": COLUMN, "row": r, "col": c} for r, c in dut.slice_starts(COLUMN)]
    reads += [{"mode": ROW, "row": r, "col": c} for r, c in dut.slice_starts(ROW)]
    run = _run(dut, writes, reads, seed=2, write_prob=0.8, read_prob=0.6,
               ready_prob=1 if registered else 0.7, reads_after_writes=True)
    assert np.array_equal(run.matrix, want)
    transpose = [v for c in range(dut.cols) for r0 in range(0, dut.rows, dut.lanes)
                 for v in [int(want[r, c]) if r < dut.rows else 0
                           for r in range(r0, r0 + dut.lanes)]]
    assert [v for _, got in run.outputs[:len(transpose) // dut.lanes] for v in got] == transpose


def _memories(fragment):
    found = [fragment] if isinstance(fragment, MemoryInstance) else []
    for sub, _, _ in fragment.subfragments:
        found += _memories(sub)
    return found


@pytest.mark.parametrize(("rows", "cols", "lanes"), [(10, 7, 4), (7, 11, 3), (5, 6, 1)])
def test_banks_are_memories_laid_out_as_documented(rows, cols, lanes):
    dut = TransposeMemory(signed(12), rows, cols, lanes)
    top = Fragment.get(dut, None)
    banks = _memories(top)
    assert len(banks) == lanes
    assert dut.bank_depth == -(-rows // lanes) * cols
    assert dut.size_bits == lanes * dut.bank_depth * 12
    for bank in banks:
        assert (bank._data.depth, bank._data.shape) == (dut.bank_depth, signed(12))
    # Element (r, c) holds a distinct value; it must be found where location() says.
    values = np.arange(rows * cols).reshape(rows, cols) - 40
    writes = [{"mode": ROW, "row": r, "col": c, "mask": (1 << lanes) - 1,
               "data": [int(values[r, c + k]) if c + k < cols else 0 for k in range(lanes)]}
              for r, c in dut.slice_starts(ROW)]

    async def check(ctx):
        for r in range(rows):
            for c in range(cols):
                bank, addr = dut.location(r, c)
                assert ctx.get(banks[bank]._data[addr]) == values[r, c], (r, c)

    run = _run(dut, writes, [], seed=4, write_prob=1, sim_top=top, after=check)
    assert np.array_equal(run.matrix, values)


@pytest.mark.parametrize(("rows", "cols", "lanes"), [(10, 7, 4), (7, 11, 3), (8, 8, 8), (3, 2, 5)])
def test_every_slice_is_one_access_to_every_bank(rows, cols, lanes):
    dut = TransposeMemory(signed(8), rows, cols, lanes)
    used = {dut.location(r, c) for r in range(rows) for c in range(cols)}
    assert len(used) == rows * cols
    assert all(0 <= a < dut.bank_depth for _, a in used)
    for mode in (ROW, COLUMN):
        for r in range(rows):
            for c in range(cols):
                elements = [e for e in _elements(dut, mode, r, c) if e is not None]
                banks = [dut.location(*e)[0] for e in elements]
                assert len(set(banks)) == len(banks)


def test_slice_starts_cover_the_matrix_once():
    dut = TransposeMemory(signed(8), 10, 7, 4)
    assert dut.slice_starts() == [(r, c) for r in range(10) for c in (0, 4)]
    assert dut.slice_starts(COLUMN, rows=5, cols=2) == [(0, 0), (4, 0), (0, 1), (4, 1)]
    for mode in (ROW, COLUMN):
        covered = [e for start in dut.slice_starts(mode)
                   for e in _elements(dut, mode, *start) if e is not None]
        assert sorted(covered) == [(r, c) for r in range(10) for c in range(7)]


def test_divmod_by_a_constant_is_exact_for_every_value():
    x = Signal(7)
    outs = {}
    m = Module()
    for d in range(1, 13):
        q, r = divmod_const(x, d)
        outs[d] = (Signal(7, name=f"q_{d}"), Signal(4, name=f"r_{d}"))
        m.d.comb += [outs[d][0].eq(q), outs[d][1].eq(r)]

    async def tb(ctx):
        for v in range(128):
            ctx.set(x, v)
            for d, (q, r) in outs.items():
                assert (ctx.get(q), ctx.get(r)) == divmod(v, d), (v, d)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize(("shape", "rows", "cols", "lanes"), [
    (signed(8), 10, 7, 4), (signed(20), 7, 11, 3), (signed(8), 1, 1, 1)])
def test_converts_to_verilog(shape, rows, cols, lanes):
    dut = TransposeMemory(shape, rows, cols, lanes)
    text = verilog.convert(dut, name="transpose_memory")
    assert "module transpose_memory" in text
    arrays = re.findall(rf"reg \[{shape.width - 1}:0\] bank_\d+ \[{dut.bank_depth - 1}:0\];", text)
    assert len(arrays) == lanes
    for port in ("read__payload", "read_data__payload", "write__payload", "read_data__ready"):
        assert port in text


@pytest.mark.parametrize(("args", "exc", "match"), [
    (("8", 4, 4, 2), TypeError,
     r"Element shape must be a signed or unsigned integer shape, not '8'"),
    ((True, 4, 4, 2), TypeError, r"Element shape must be .* not True"),
    ((unsigned(0), 4, 4, 2), ValueError, r"Element shape must be at least 1 bit wide"),
    ((signed(8), 0, 4, 2), ValueError, r"Number of rows must be at least 1, not 0"),
    ((signed(8), 4.0, 4, 2), TypeError, r"Number of rows must be an integer, not 4\.0"),
    ((signed(8), 4, -1, 2), ValueError, r"Number of columns must be at least 1, not -1"),
    ((signed(8), 4, None, 2), TypeError, r"Number of columns must be an integer, not None"),
    ((signed(8), 4, 4, 0), ValueError, r"Number of lanes must be at least 1, not 0"),
    ((signed(8), 4, 4, True), TypeError, r"Number of lanes must be an integer, not True"),
])
def test_constructor_rejects_invalid_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        TransposeMemory(*args)


def test_registered_must_be_a_bool():
    with pytest.raises(TypeError, match=r"registered must be a bool, not 1"):
        TransposeMemory(signed(8), 4, 4, 2, registered=1)
    with pytest.raises(TypeError, match=r"address_stage must be a bool, not 1"):
        TransposeMemory(signed(8), 4, 4, 2, registered=True, address_stage=1)
    with pytest.raises(ValueError, match=r"address_stage needs registered requests"):
        TransposeMemory(signed(8), 4, 4, 2, address_stage=True)


def test_helpers_reject_invalid_arguments():
    dut = TransposeMemory(signed(8), 4, 3, 2)
    with pytest.raises(ValueError, match=r"Element \(4, 0\) is outside the 4x3 matrix"):
        dut.location(4, 0)
    with pytest.raises(ValueError, match=r"A 4x4 matrix does not fit 4x3"):
        dut.slice_starts(ROW, cols=4)
    with pytest.raises(TypeError, match=r"Dividend must be unsigned"):
        divmod_const(Signal(signed(4)), 3)
    with pytest.raises(ValueError, match=r"Divisor must be at least 1, not 0"):
        divmod_const(Signal(4), 0)


def test_holds_two_slices_while_read_data_is_stalled():
    dut = TransposeMemory(signed(8), 4, 4, 2)

    async def testbench(ctx):
        ctx.set(dut.read.payload, {"mode": ROW, "row": 0, "col": 0})
        accepted = []
        for valid in [1, 0, 0, 1, 1, 1]:
            ctx.set(dut.read.valid, valid)
            _, _, ready = await ctx.tick().sample(dut.read.ready)
            accepted.append(valid and ready)
        # The first slice waits in the output register; the second is accepted into the banks'
        # read registers behind it although the output is stalled, then the requests wait.
        assert accepted == [1, 0, 0, 1, 0, 0]
        ctx.set(dut.read_data.ready, 1)
        _, _, ready, valid = await ctx.tick().sample(dut.read.ready, dut.read_data.valid)
        assert ready and valid  # one slice out, one request in, in the same cycle

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


# -- aligned row slices only --------------------------------------------------------------------
def _aligned_ops(dut, n_writes, n_reads, seed):
    """Row slices at multiples of the lanes only, sometimes past the edge or outside."""
    rng = random.Random(seed)
    lo, hi = -(1 << (dut.shape.width - 1)), (1 << (dut.shape.width - 1)) - 1
    full = (1 << dut.lanes) - 1
    blocks = -(-dut.cols // dut.lanes)

    def start():
        if rng.random() < 0.05:
            return _field_max(dut.rows), 0
        return rng.randrange(dut.rows), rng.randrange(blocks) * dut.lanes

    writes = [{"mode": ROW, **dict(zip(("row", "col"), start())),
               "data": [rng.randint(lo, hi) for _ in range(dut.lanes)],
               "mask": full if rng.random() < 0.6 else rng.randint(0, full)}
              for _ in range(n_writes)]
    reads = [{"mode": ROW, **dict(zip(("row", "col"), start()))} for _ in range(n_reads)]
    return writes, reads


@pytest.mark.parametrize(("rows", "cols", "lanes"), [(10, 7, 4), (7, 12, 3), (5, 6, 1),
                                                     (4, 16, 8)])
@pytest.mark.parametrize("registered, address_stage", STAGES)
def test_aligned_row_traffic_matches_model_under_stalls(rows, cols, lanes, registered,
                                                        address_stage):
    dut = TransposeMemory(signed(12), rows, cols, lanes, registered=registered,
                          address_stage=address_stage,
                          aligned_rows=True)
    writes, reads = _aligned_ops(dut, 120, 160, seed=rows * cols + lanes)
    run = _run(dut, writes, reads, seed=lanes, ready_prob=1 if registered else 0.7)
    assert sum(any(v for v in want) for _, _, want in run.reads) > len(reads) // 2


@pytest.mark.parametrize(("rows", "cols", "lanes"), [(10, 7, 4), (7, 12, 3)])
def test_aligned_banks_are_laid_out_as_documented_and_never_rotate(rows, cols, lanes):
    dut = TransposeMemory(signed(12), rows, cols, lanes, aligned_rows=True)
    assert dut.bank_depth == rows * -(-cols // lanes)
    assert {dut.location(r, c) for r in range(rows) for c in range(cols)} == {
        (c % lanes, r * -(-cols // lanes) + c // lanes) for r in range(rows) for c in range(cols)}
    top = Fragment.get(dut, None)
    banks = _memories(top)
    values = np.arange(rows * cols).reshape(rows, cols) - 40
    writes = [{"mode": ROW, "row": r, "col": c, "mask": (1 << lanes) - 1,
               "data": [int(values[r, c + k]) if c + k < cols else 0 for k in range(lanes)]}
              for r, c in dut.slice_starts(ROW)]

    async def check(ctx):
        for r in range(rows):
            for c in range(cols):
                bank, addr = dut.location(r, c)
                assert ctx.get(banks[bank]._data[addr]) == values[r, c], (r, c)

    run = _run(dut, writes, [], seed=4, write_prob=1, sim_top=top, after=check)
    assert np.array_equal(run.matrix, values)
    # Smaller than the diagonal layout: no rotators.
    cells = len(re.findall(r"^\s*cell ", rtlil.convert(dut, name="m"), re.M))
    diagonal = TransposeMemory(signed(12), rows, cols, lanes)
    assert cells < len(re.findall(r"^\s*cell ", rtlil.convert(diagonal, name="m"), re.M))


@pytest.mark.parametrize("registered, address_stage", STAGES)
@pytest.mark.parametrize("same_edge", [False, True])
def test_collided_flags_a_word_read_on_the_edge_it_is_written(registered, address_stage,
                                                             same_edge):
    dut = TransposeMemory(signed(8), 6, 5, 4, registered=registered,
                          address_stage=address_stage)
    write = {"mode": COLUMN, "row": 1, "col": 3, "data": [1, 2, 3, 4], "mask": 0b0100}
    # Row 3 from column 1 holds (3, 3), the element written (lane 2 of the column slice); row 5
    # lies in the next block of rows, at other addresses of every bank.
    read = {"mode": ROW, "row": 3, "col": 1} if same_edge else {"mode": ROW, "row": 5, "col": 0}

    async def testbench(ctx):
        ctx.set(dut.read_data.ready, 1)
        ctx.set(dut.write.valid, 1)
        ctx.set(dut.write.payload, write)
        ctx.set(dut.read.valid, 1)
        ctx.set(dut.read.payload, read)
        await ctx.tick()
        ctx.set(dut.write.valid, 0)
        ctx.set(dut.read.valid, 0)
        await ctx.tick().repeat(dut.latency + 1)
        assert ctx.get(dut.collided) == same_edge

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
