# amaranth: UnusedElaboratable=no
"""SystolicArray against ``tile_matmul`` of the golden model, element by element, and its timing
against ``systolic_schedule``, cycle by cycle."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.back import verilog
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
