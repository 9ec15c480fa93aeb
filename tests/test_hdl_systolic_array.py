# amaranth: UnusedElaboratable=no
"""SystolicArray against ``tile_matmul`` of the golden model, element by element, and its timing
against ``systolic_schedule``, cycle by cycle."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth import Elaboratable, Module, signed, unsigned
from amaranth.back import rtlil, verilog
from amaranth.sim import Simulator
from stream_helpers import run_stream

from intrain.config import Config
from intrain.golden import matmul
from intrain.hdl import SystolicArray


def _beats(tiles):
    """Input beats for a list of ``(A, B)`` tiles: beat k holds ``A[:, k]`` and ``B[k, :]``."""
    beats = []
    for a, b in tiles:
        k = a.shape[1]
        for j in range(k):
            beats.append({"a": [int(v) for v in a[:, j]], "b": [int(v) for v in b[j, :]],
                          "first": int(j == 0), "last": int(j == k - 1)})
    return beats


def _random_tiles(rng, rows, cols, ks, lo=-128, hi=127):
    return [(rng.integers(lo, hi + 1, (rows, k)), rng.integers(lo, hi + 1, (k, cols)))
            for k in ks]


def _row(p):
    return int(p.row), [int(v) for v in p.values], bool(p.last)


def _check(dut, tiles, outputs, acc_width=None):
    """Every output row, in order, against the golden product of its tile."""
    assert len(outputs) == len(tiles) * dut.rows
    for n, (a, b) in enumerate(tiles):
        want = matmul.tile_matmul(a, b, acc_width)
        for r in range(dut.rows):
            row, values, last = outputs[n * dut.rows + r]
            assert (row, last) == (r, r == dut.rows - 1), f"tile {n}"
            assert values == [int(v) for v in want[r]], f"tile {n} row {r}"


def _run(dut, tiles, **kwargs):
    res = run_stream(dut, _beats(tiles), len(tiles) * dut.rows, convert=_row, **kwargs)
    return res


def _mixed_ks(rows, cols):
    """K = 1, K < rows, K = rows, K = cols, K much larger than rows, in a shuffled order."""
    return [1, max(1, rows - 1), rows, cols, 3 * rows + 2, 1, 2, rows + 1, 5 * max(rows, cols)]


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (2, 3), (3, 2), (4, 4), (8, 8)])
def test_every_element_matches_golden_under_random_stalls(rows, cols):
    rng = np.random.default_rng(rows * 10 + cols)
    dut = SystolicArray(rows, cols)
    tiles = _random_tiles(rng, rows, cols, _mixed_ks(rows, cols))
    res = _run(dut, tiles, seed=rows + cols)
    _check(dut, tiles, res.outputs)


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (3, 4), (4, 4)])
def test_ternary_products_match_golden_under_random_stalls(rows, cols):
    """``dsp="ternary"``: weights of -1, 0 and +1 select ``b``, ``-b`` or 0 with no multiplier;
    every element equals the golden product, the extreme B operands included."""
    rng = np.random.default_rng(rows * 7 + cols)
    dut = SystolicArray(rows, cols, a_shape=signed(2), dsp="ternary")
    ks = _mixed_ks(rows, cols)
    tiles = [(rng.integers(-1, 2, (rows, k)), rng.choice([-128, 127, *range(-5, 6)], (k, cols)))
             for k in ks]
    res = _run(dut, tiles, seed=rows + 2 * cols, valid_prob=0.8, ready_prob=0.8)
    _check(dut, tiles, res.outputs)


@pytest.mark.parametrize(("rows", "cols", "valid_prob", "ready_prob"), [
    (2, 3, 1.0, 0.3),   # heavy back-pressure: the input must stall, nothing is lost
    (3, 2, 0.4, 1.0),   # sparse input: bubbles inside tiles
    (4, 4, 0.9, 0.5),
])
def test_back_pressure_and_idle_input_lose_nothing(rows, cols, valid_prob, ready_prob):
    rng = np.random.default_rng(rows + 7 * cols)
    dut = SystolicArray(rows, cols)
    tiles = _random_tiles(rng, rows, cols, [1, 1, 1, 2, rows, 1, 3 * rows, 1, 2, cols])
    res = _run(dut, tiles, valid_prob=valid_prob, ready_prob=ready_prob, seed=rows)
    _check(dut, tiles, res.outputs)


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (2, 3), (3, 2), (4, 4)])
def test_maximum_magnitudes_are_exact(rows, cols):
    dut = SystolicArray(rows, cols)
    k = 40
    tiles = [
        (np.full((rows, k), -128), np.full((k, cols), -128)),   # +16384 * K
        (np.full((rows, k), -128), np.full((k, cols), 127)),    # -16256 * K
        (np.full((rows, 1), -128), np.full((1, cols), -128)),   # one beat
        (np.full((rows, k), 127), np.full((k, cols), 127)),
    ]
    res = _run(dut, tiles, seed=1)
    _check(dut, tiles, res.outputs)
    assert res.outputs[0][1][0] == 16384 * k
    assert res.outputs[rows][1][0] == -16256 * k


@pytest.mark.parametrize(("rows", "cols", "k"), [(1, 1, 1), (2, 3, 3), (3, 2, 3), (4, 4, 4),
                                                 (4, 4, 9), (8, 8, 8)])
def test_full_throughput_back_to_back_when_k_at_least_rows_and_cols(rows, cols, k):
    rng = np.random.default_rng(k)
    dut = SystolicArray(rows, cols)
    n_tiles = 4
    tiles = _random_tiles(rng, rows, cols, [k] * n_tiles)
    res = _run(dut, tiles, valid_prob=1, ready_prob=1)
    _check(dut, tiles, res.outputs)
    assert res.accept_cycles == list(range(n_tiles * k))  # one beat every cycle
    lasts = res.accept_cycles[k - 1::k]
    assert res.output_cycles == [t + dut.latency + r for t in lasts for r in range(rows)]


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (2, 3), (3, 2), (4, 4), (5, 2)])
def test_unstalled_timing_matches_the_golden_schedule(rows, cols):
    ks = [1, 1, 1, 2, rows, cols, 1, 3, max(rows, cols) + 2, 1, 1]
    rng = np.random.default_rng(rows * cols)
    dut = SystolicArray(rows, cols)
    tiles = _random_tiles(rng, rows, cols, ks)
    res = _run(dut, tiles, valid_prob=1, ready_prob=1)
    _check(dut, tiles, res.outputs)
    accept, out = matmul.systolic_schedule(ks, rows, cols)
    assert res.accept_cycles == accept
    assert res.output_cycles == [c for tile in out for c in tile]


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (2, 3), (3, 2), (8, 8)])
def test_latency_matches_a_measured_tile(rows, cols):
    dut = SystolicArray(rows, cols)
    assert dut.latency == dut.PIPELINE_CYCLES + cols - 1 == matmul.systolic_latency(cols)
    assert dut.PIPELINE_CYCLES == matmul.PIPELINE_CYCLES
    tiles = _random_tiles(np.random.default_rng(0), rows, cols, [3])
    res = _run(dut, tiles, valid_prob=1, ready_prob=1)
    assert res.output_cycles[0] - res.accept_cycles[-1] == dut.latency
    assert res.output_cycles == [res.output_cycles[0] + r for r in range(rows)]


def test_results_wrap_modulo_the_accumulator_width():
    dut = SystolicArray(2, 3, acc_width=12)
    rng = np.random.default_rng(3)
    tiles = _random_tiles(rng, 2, 3, [1, 4, 9, 2]) + [
        (np.full((2, 8), -128), np.full((8, 3), -128))]   # 131072 = 2 ** 17: wraps to 0
    res = _run(dut, tiles, seed=3)
    _check(dut, tiles, res.outputs, acc_width=12)
    assert any(abs(int(v)) >= 2048 for a, b in tiles for v in (a @ b).ravel())
    assert res.outputs[-1][1] == [0, 0, 0]
    assert [int(v) for v in matmul.wrap([2047, 2048, -2049, 4096 + 5], 12)] == [2047, -2048,
                                                                               2047, 5]


def test_unsigned_operands():
    dut = SystolicArray(3, 2, a_shape=unsigned(8), b_shape=signed(4), acc_width=20)
    rng = np.random.default_rng(9)
    tiles = [(rng.integers(0, 256, (3, k)), rng.integers(-8, 8, (k, 2))) for k in (1, 5, 3)]
    res = _run(dut, tiles, seed=9)
    _check(dut, tiles, res.outputs)


def test_busy_and_mac_count_count_every_useful_mac():
    rows, cols, ks = 3, 4, [5, 1, 7, 2]
    dut = SystolicArray(rows, cols)
    tiles = _random_tiles(np.random.default_rng(4), rows, cols, ks)
    beats = _beats(tiles)
    counts = []

    async def tb(ctx):
        k = 0
        for cycle in range(300):
            present = k < len(beats) and cycle % 3 != 1
            if present:
                ctx.set(dut.i.payload, beats[k])
            ctx.set(dut.i.valid, present)
            ctx.set(dut.o.ready, cycle % 5 != 0)
            _, _, accepted, busy, macs = await ctx.tick().sample(
                dut.i.valid & dut.i.ready, dut.busy, dut.mac_count)
            k += accepted
            counts.append((busy, macs))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert sum(m for _, m in counts) == sum(ks) * rows * cols
    assert all(bool(b) == (m > 0) for b, m in counts)
    assert all(m <= dut.macs for _, m in counts)
    assert counts[-1] == (0, 0)


def test_full_throughput_uses_every_pe_every_cycle():
    rows, cols, k = 4, 4, 12
    dut = SystolicArray(rows, cols)
    beats = _beats(_random_tiles(np.random.default_rng(5), rows, cols, [k] * 3))
    macs = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for beat in beats:
            ctx.set(dut.i.payload, beat)
            _, _, ready, m = await ctx.tick().sample(dut.i.ready, dut.mac_count)
            assert ready
            macs.append(m)
        ctx.set(dut.i.valid, 0)
        for _ in range(rows + cols):
            _, _, m = await ctx.tick().sample(dut.mac_count)
            macs.append(m)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    # The pipeline fills and empties along the anti-diagonals; in between, all 16 PEs work.
    fill = rows + cols - 2
    assert macs[fill:len(beats)] == [dut.macs] * (len(beats) - fill)
    assert sum(macs) == len(beats) * dut.macs


class _SideBySide(Elaboratable):
    """A stalling array and one with ``output_always_ready``, otherwise alike, fed the same
    input; the output of both is always ready."""

    def __init__(self, rows, cols, **kwargs):
        self.old = SystolicArray(rows, cols, **kwargs)
        self.new = SystolicArray(rows, cols, output_always_ready=True, **kwargs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.old, m.submodules.new = self.old, self.new
        m.d.comb += [
            self.new.i.valid.eq(self.old.i.valid),
            self.new.i.payload.eq(self.old.i.payload),
            self.old.o.ready.eq(1),
            self.new.o.ready.eq(1),
        ]
        return m


def _side_by_side(rows, cols, ks, valid_prob, seed):
    """Random tiles of ``ks`` beats offered with random gaps to both arrays of a
    :class:`_SideBySide`: every cycle, ``i.ready``, ``o.valid``, the output payload, ``busy``
    and ``mac_count`` of both agree (a stall of the old array, ``en`` low, would hold back
    ``mac_count`` while a beat is in the array); every row is the exact product. Returns the
    cycles of the input transfers."""
    rng = np.random.default_rng(seed)
    pair = _SideBySide(rows, cols)
    old, new = pair.old, pair.new
    tiles = _random_tiles(rng, rows, cols, ks)
    beats = _beats(tiles)
    outputs, accepts = [], []
    pairs = [(old.i.ready, new.i.ready), (old.o.valid, new.o.valid), (old.busy, new.busy),
             (old.mac_count, new.mac_count)]

    async def tb(ctx):
        k = cycle = 0
        presenting = False
        while len(outputs) < len(tiles) * rows:
            assert cycle < 20 * len(beats) + 200, "timeout"
            if not presenting and k < len(beats) and rng.random() < valid_prob:
                ctx.set(old.i.payload, beats[k])
                presenting = True
            ctx.set(old.i.valid, presenting)
            for a, b in pairs:
                assert ctx.get(a) == ctx.get(b), f"cycle {cycle}: {a.name} differs"
            if ctx.get(old.o.valid):
                assert _row(ctx.get(old.o.payload)) == _row(ctx.get(new.o.payload)), cycle
                outputs.append(_row(ctx.get(new.o.payload)))
            if presenting and ctx.get(new.i.ready):
                accepts.append(cycle)
                k += 1
                presenting = False
            await ctx.tick()
            cycle += 1
        ctx.set(old.i.valid, 0)
        for _ in range(old.latency + rows + 2):
            assert not ctx.get(new.o.valid) and not ctx.get(old.o.valid)
            assert ctx.get(old.mac_count) == ctx.get(new.mac_count)
            await ctx.tick()

    sim = Simulator(pair)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    _check(new, tiles, outputs)
    return accepts


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (1, 4), (4, 1), (2, 3), (3, 2), (4, 4),
                                            (6, 2), (2, 6), (5, 3)])
@pytest.mark.parametrize("valid_prob", [1.0, 0.7])
def test_output_always_ready_changes_no_cycle(rows, cols, valid_prob):
    """Without the stall logic, the same cycles and results as with it, output always ready:
    short tiles (one beat, fewer beats than rows or columns) back to back, long tiles, random
    input gaps; rows above, equal to and below columns."""
    rng = np.random.default_rng(rows * 31 + cols)
    ks = [int(k) for k in rng.choice([1, 1, 1, 2, rows, cols, max(rows, cols) + 3], 60)]
    ks += [1] * 8 + [2] * 6 + [rows] * 4 + [cols] * 4
    accepts = _side_by_side(rows, cols, ks, valid_prob, seed=rows + 10 * cols)
    if valid_prob == 1.0:
        accept, _ = matmul.systolic_schedule(ks, rows, cols)
        assert accepts == accept


@pytest.mark.parametrize("dsp", ["ice40", "ecp5", "gowin"])
def test_output_always_ready_with_each_dsp_mapping(dsp):
    """The vendor primitives' models (Icarus), their clock enables tied high: a generic and a
    mapped array, both with ``output_always_ready``, input gaps, the output always ready; every
    row exact, and without gaps the same cycles as the golden schedule (shifted by the mapped
    array's extra pipeline cycles)."""
    from test_multiplier_vendor import HAVE_ICARUS, NO_ICARUS, NO_MODELS, _params, _sources

    from intrain.sim.runner import export_verilog, run_cocotb
    from intrain.sim.tb_multiplier import ArrayPair

    if NO_MODELS is not None or not HAVE_ICARUS:
        pytest.skip(NO_MODELS or NO_ICARUS)
    params = _params(dsp, 3, 2, ready_prob=1.0, valid_prob=0.7)
    top = ArrayPair(3, 2, dsp, output_always_ready=True)
    sources = _sources(dsp, "top_always_ready", export_verilog(top, "top"))
    for testcase in ("products_match_generic", "timing_follows_the_pipeline"):
        run_cocotb(sources, toplevel="top", test_module="intrain.sim.tb_multiplier",
                   sim="icarus", testcase=testcase, parameters=params, seed=params["seed"])


def test_output_always_ready_has_no_clock_enables():
    plain = rtlil.convert(SystolicArray(3, 2, dsp="ecp5"))
    text = rtlil.convert(SystolicArray(3, 2, dsp="ecp5", output_always_ready=True))
    assert "conflict_0" in plain and "conflict_0" not in text
    assert plain.count("connect \\CE0 \\en [0]") == 6
    assert text.count("connect \\CE0 1'1") == 6    # the DSP blocks' clock enables tied high
    assert re.search(r"wire width 1 \\en$", plain, re.M)
    assert not re.search(r"wire width 1 \\en$", text, re.M)
    assert SystolicArray(2, 2, output_always_ready=True).output_always_ready
    assert not SystolicArray(2, 2).output_always_ready
    config = Config(array_rows=2, array_cols=3)
    assert SystolicArray.for_config(config, output_always_ready=True).output_always_ready
    with pytest.raises(TypeError, match=r"output_always_ready must be a bool, not 1"):
        SystolicArray(2, 2, output_always_ready=1)


def test_for_config_sizes_from_the_configuration():
    config = Config(array_rows=4, array_cols=6, acc_bits=24, bits="8-8-8-8", batch_size=16)
    dut = SystolicArray.for_config(config)
    assert (dut.rows, dut.cols, dut.acc_width, dut.macs) == (4, 6, 24, 24)
    assert dut.a_shape == dut.b_shape == signed(8)


def test_converts_to_verilog():
    dut = SystolicArray(2, 3)
    text = verilog.convert(dut, name="systolic_array")
    assert "module systolic_array" in text
    assert "i__payload" in text and "o__payload" in text and "mac_count" in text
    assert "acc_1_2" in text and "out_0_0" in text


@pytest.mark.parametrize(("args", "kwargs", "exc", "match"), [
    (("4", 4), {}, TypeError, r"Number of rows must be an integer, not '4'"),
    ((0, 4), {}, ValueError, r"Number of rows must be at least 1, not 0"),
    ((4, True), {}, TypeError, r"Number of columns must be an integer, not True"),
    ((4, -1), {}, ValueError, r"Number of columns must be at least 1, not -1"),
    ((4, 4), {"a_shape": "int8"}, TypeError,
     r"A operand shape must be a signed or unsigned integer shape, not 'int8'"),
    ((4, 4), {"b_shape": 0}, ValueError, r"B operand shape must be at least 1 bit wide, not 0"),
    ((4, 4), {"b_shape": False}, TypeError, r"B operand shape must be a signed or unsigned"),
    ((4, 4), {"acc_width": 32.0}, TypeError, r"Accumulator width must be an integer, not 32\.0"),
    ((4, 4), {"acc_width": 0}, ValueError, r"Accumulator width must be at least 1, not 0"),
])
def test_constructor_rejects_invalid_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SystolicArray(*args, **kwargs)


def test_golden_schedule_rejects_empty_tiles_and_matmul_checks_shapes():
    with pytest.raises(ValueError, match="at least one beat"):
        matmul.systolic_schedule([2, 0], 2, 2)
    with pytest.raises(ValueError, match="cannot multiply"):
        matmul.tile_matmul(np.zeros((2, 3)), np.zeros((2, 3)))
