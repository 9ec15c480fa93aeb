# amaranth: UnusedElaboratable=no
"""ShiftQuantizer against ``round_shift``, ``saturate`` and ``qa`` of the golden model, element by
element, under random stalls on both sides."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.back import verilog
from stream_helpers import assert_latency, run_stream

from intrain.config import Config
from intrain.golden import arith
from intrain.hdl import ShiftQuantizer


def _edges(in_width, s, limit):
    """Maximum magnitudes, zero, exact ties and the clip and mask boundaries for shift ``s``."""
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    vals = {0, 1, -1, 2, -2, lo, lo + 1, hi, hi - 1}
    if s > 0:
        for k in (0, 1, 2, 3, 2 * limit - 1, 2 * limit, 2 * limit + 1):
            tie = (2 * k + 1) << (s - 1)  # exactly half-way between k and k + 1
            vals |= {tie, -tie, tie - 1, tie + 1, -tie - 1, -tie + 1}
    boundary = limit << s if s >= 0 else limit >> -s
    vals |= {boundary, boundary + 1, boundary - 1, -boundary, -boundary - 1, -boundary + 1}
    return sorted(v for v in vals if lo <= v <= hi)


def _golden(xs, s, out_bits, relu):
    limit = (1 << (out_bits - 1)) - 1
    a, mask = arith.qa(xs, s, limit)
    if not relu:
        a = arith.saturate(arith.round_shift(xs, s), limit)
    return [int(v) for v in a], [bool(v) for v in mask]


def _random(rng, in_width, n):
    # Mix full-range values with small ones, which meet the ties and boundaries more often.
    full = rng.integers(-(1 << (in_width - 1)), 1 << (in_width - 1), n)
    small = rng.integers(-300, 301, n)
    vals = np.where(rng.random(n) < 0.5, full, small)
    return [int(v) for v in np.clip(vals, -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1)]


@pytest.mark.parametrize(("in_width", "out_bits", "shift", "relu", "clip_mask"), [
    (12, 8, 3, True, True),
    (12, 8, 0, True, True),
    (12, 8, -3, False, True),
    (12, 4, 1, False, False),
    (10, 8, 11, False, True),   # shift beyond the input width: only ties at +-0.5 remain
    (20, 8, 12, True, True),
])
def test_constant_shift_matches_golden_under_stalls(in_width, out_bits, shift, relu, clip_mask):
    dut = ShiftQuantizer(in_width, out_bits, shift=shift, relu=relu, clip_mask=clip_mask)
    rng = np.random.default_rng(in_width * 100 + shift)
    xs = _edges(in_width, shift, dut.limit) + _random(rng, in_width, 400)
    res = run_stream(dut, xs, len(xs), seed=shift + 50)
    want, mask = _golden(xs, shift, out_bits, relu)
    assert [int(p.value) for p in res.outputs] == want
    if clip_mask:
        assert [bool(p.mask) for p in res.outputs] == mask
    assert_latency(res, dut.latency)


@pytest.mark.parametrize(("in_width", "out_bits", "min_shift", "max_shift", "relu", "clip_mask"), [
    (12, 8, -7, 4, False, False),    # QE: k - 7 for every k = RL2(max|x|) of a 12-bit tensor
    (16, 6, -3, 18, True, True),     # both signs, beyond the width, with ReLU and mask
    (8, 8, 2, 5, False, True),       # a range that excludes 0
])
def test_every_runtime_shift_matches_golden_under_stalls(in_width, out_bits, min_shift,
                                                          max_shift, relu, clip_mask):
    dut = ShiftQuantizer(in_width, out_bits, min_shift=min_shift, max_shift=max_shift, relu=relu,
                         clip_mask=clip_mask)
    rng = np.random.default_rng(in_width + max_shift)
    xs, ss = [], []
    for s in range(min_shift, max_shift + 1):
        vals = _edges(in_width, s, dut.limit) + _random(rng, in_width, 80)
        xs += vals
        ss += [s] * len(vals)
    # Interleave the shifts so that consecutive elements use different ones.
    order = rng.permutation(len(xs))
    xs = [xs[k] for k in order]
    ss = [ss[k] for k in order]
    res = run_stream(dut, xs, len(xs), sideband=[(dut.shift, ss)], seed=max_shift)
    for x, s, p in zip(xs, ss, res.outputs, strict=True):
        want, mask = _golden([x], s, out_bits, relu)
        assert int(p.value) == want[0], f"x={x} s={s}"
        if clip_mask:
            assert bool(p.mask) == mask[0], f"x={x} s={s}"
    assert_latency(res, dut.latency)


def test_full_throughput_and_exact_latency_without_stalls():
    dut = ShiftQuantizer(16, 8, min_shift=-2, max_shift=9)
    rng = np.random.default_rng(7)
    xs = _random(rng, 16, 300)
    ss = [int(v) for v in rng.integers(-2, 10, 300)]
    res = run_stream(dut, xs, len(xs), sideband=[(dut.shift, ss)], valid_prob=1, ready_prob=1)
    assert res.accept_cycles == list(range(len(xs)))
    assert_latency(res, dut.latency, exact=True)
    assert [int(p.value) for p in res.outputs] == [
        int(arith.saturate(arith.round_shift(x, s), 127)) for x, s in zip(xs, ss, strict=True)]


def test_a_zero_tensor_stays_zero_for_every_shift():
    dut = ShiftQuantizer(12, 8, min_shift=-7, max_shift=4, clip_mask=True)
    ss = list(range(-7, 5))
    res = run_stream(dut, [0] * len(ss), len(ss), sideband=[(dut.shift, ss)], seed=3)
    assert [int(p.value) for p in res.outputs] == [0] * len(ss)
    assert all(p.mask for p in res.outputs)


def test_qa_of_the_default_configuration_matches_golden_qa():
    plan = Config().plan[0]
    dut = ShiftQuantizer.for_qa(plan)
    assert (dut.in_width, dut.out_bits, dut.const_shift) == (
        plan.acc_bits_forward, plan.bits.a, plan.qa_shift)
    assert dut.relu and dut.clip_mask and dut.limit == plan.a_max
    rng = np.random.default_rng(11)
    xs = _edges(dut.in_width, plan.qa_shift, plan.a_max) + _random(rng, dut.in_width, 150)
    res = run_stream(dut, xs, len(xs), seed=11)
    a, mask = arith.qa(xs, plan.qa_shift, plan.a_max)
    assert [int(p.value) for p in res.outputs] == [int(v) for v in a]
    assert [bool(p.mask) for p in res.outputs] == [bool(v) for v in mask]


def test_qe_of_a_tensor_matches_golden_qe():
    plan = Config().plan[-1]
    dut = ShiftQuantizer.for_qe(plan, in_width=14)
    assert (dut.min_shift, dut.max_shift) == (-7, 6)
    rng = np.random.default_rng(5)
    tensors = [np.zeros(5, dtype=np.int64), np.array([-(1 << 13)] + [1] * 4),
               np.array([1, -1, 0, 1]), np.array([3, -2]), rng.integers(-(1 << 13), 1 << 13, 40),
               rng.integers(-90, 91, 40), np.array([181, -181, 90, 91, -91])]
    xs, ss, want = [], [], []
    for t in tensors:
        m = arith.max_abs(t)
        k = arith.rl2(m) if m else 0
        xs += [int(v) for v in t]
        ss += [k - 7] * len(t)
        want += [int(v) for v in arith.qe(t, plan.e_max)]
    res = run_stream(dut, xs, len(xs), sideband=[(dut.shift, ss)], seed=5)
    assert [int(p.value) for p in res.outputs] == want


def test_round_shift_expression_matches_golden_for_every_value():
    from amaranth import Module, Signal, signed
    from amaranth.sim import Simulator

    from intrain.hdl.shift_quantizer import round_shift, saturate

    x = Signal(signed(6))
    outs = {s: Signal(signed(10), name=f"y_{s + 3}") for s in range(-3, 9)}
    m = Module()
    for s, y in outs.items():
        m.d.comb += y.eq(saturate(round_shift(x, s), 100))

    async def tb(ctx):
        for v in range(-32, 32):
            ctx.set(x, v)
            for s, y in outs.items():
                assert ctx.get(y) == int(arith.saturate(arith.round_shift(v, s), 100)), (v, s)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("kwargs", [
    {"shift": 3, "relu": True, "clip_mask": True},
    {"min_shift": -7, "max_shift": 9, "clip_mask": True},
])
def test_converts_to_verilog(kwargs):
    dut = ShiftQuantizer(20, 8, **kwargs)
    text = verilog.convert(dut, name="shift_quantizer")
    assert "module shift_quantizer" in text
    assert "i__payload" in text and "o__payload" in text
    assert bool(re.search(r"input .*\bshift;", text)) == ("min_shift" in kwargs)


@pytest.mark.parametrize(("args", "kwargs", "exc", "match"), [
    (("8", 8), {"shift": 1}, TypeError, r"Input width must be an integer, not '8'"),
    ((0, 8), {"shift": 1}, ValueError, r"Input width must be at least 1, not 0"),
    ((8, 1), {"shift": 1}, ValueError, r"Output width must be at least 2, not 1"),
    ((8, True), {"shift": 1}, TypeError, r"Output width must be an integer, not True"),
    ((8, 8), {"shift": 1.5}, TypeError, r"Shift must be an integer, not 1\.5"),
    ((8, 8), {}, ValueError, r"Give either a constant shift or both min_shift and max_shift"),
    ((8, 8), {"min_shift": 0}, ValueError, r"both min_shift and max_shift"),
    ((8, 8), {"shift": 1, "max_shift": 2}, ValueError, r"not both"),
    ((8, 8), {"min_shift": 3, "max_shift": 2}, ValueError,
     r"Maximum shift must be at least 3, not 2"),
    ((8, 8), {"min_shift": "0", "max_shift": 2}, TypeError,
     r"Minimum shift must be an integer, not '0'"),
    ((8, 8), {"shift": 1, "relu": 1}, TypeError, r"relu must be a bool, not 1"),
    ((8, 8), {"shift": 1, "clip_mask": None}, TypeError, r"clip_mask must be a bool, not None"),
])
def test_constructor_rejects_invalid_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ShiftQuantizer(*args, **kwargs)
