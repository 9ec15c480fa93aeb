# amaranth: UnusedElaboratable=no
"""StochasticRounder against ``stochastic_round`` of the golden model, element by element, for
every shift of its range, under random stalls on both sides."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.hdl import Fragment
from stream_helpers import assert_latency, run_stream

from intrain.config import Config
from intrain.golden import arith
from intrain.golden.lfsr import generate
from intrain.hdl import LfsrBank, StochasticRounder


def _frac(g, s, d):
    """The fraction the rounder compares, from its definition (not from the golden code)."""
    mag = abs(g)
    if s <= 0:
        return 0
    rem = mag % (1 << s)
    return (rem << d) >> s


def _cases(g_width, d, s, rng, n_random):
    """Extreme magnitudes, zero, and draws equal to the fraction and one either side of it."""
    lo, hi = -(1 << (g_width - 1)), (1 << (g_width - 1)) - 1
    umax = (1 << d) - 1
    gs = [0, 1, -1, hi, lo, lo + 1, hi - 1, 3, -3]
    if s > 0:
        gs += [1 << (s - 1), -(1 << (s - 1)), (1 << s) - 1, -(1 << s) + 1, (1 << s) + 1]
    gs += [int(v) for v in rng.integers(lo, hi + 1, n_random)]
    out = []
    for g in gs:
        if not lo <= g <= hi:
            continue
        f = _frac(g, s, d)
        for u in {0, umax, f, f - 1, f + 1, int(rng.integers(0, umax + 1))}:
            if 0 <= u <= umax:
                out.append((g, u))
    return out


def _golden(g, s, u, d):
    return int(arith.stochastic_round([g], s, [u], d)[0])


@pytest.mark.parametrize(("g_width", "draw_bits", "min_shift", "max_shift"), [
    (12, 8, -5, 22),     # left shifts, shifts above and below draw_bits, beyond the width
    (10, 16, 0, 12),     # fractions extended with zeros (shift < draw_bits)
    (6, 3, 2, 9),        # a range without 0
])
def test_every_shift_matches_golden_under_stalls(g_width, draw_bits, min_shift, max_shift):
    dut = StochasticRounder(g_width, draw_bits, max_shift, min_shift)
    rng = np.random.default_rng(g_width * 7 + max_shift)
    items, ss = [], []
    for s in range(min_shift, max_shift + 1):
        cases = _cases(g_width, draw_bits, s, rng, 12)
        items += [{"g": g, "u": u} for g, u in cases]
        ss += [s] * len(cases)
    order = rng.permutation(len(items))
    items = [items[k] for k in order]
    ss = [ss[k] for k in order]
    res = run_stream(dut, items, len(items), sideband=[(dut.shift, ss)], seed=max_shift)
    for it, s, out in zip(items, ss, res.outputs, strict=True):
        assert out == _golden(it["g"], s, it["u"], draw_bits), f"{it} s={s}"
    assert_latency(res, dut.latency)


def test_a_draw_equal_to_the_fraction_never_rounds_up():
    dut = StochasticRounder(12, 8, 10, -2)
    items, ss, want = [], [], []
    for s in range(-2, 11):
        for g in (5, -5, 1000, -1000, 2047, -2048, 0):
            u = _frac(g, s, 8)
            items.append({"g": g, "u": u})
            ss.append(s)
            want.append(g * 2 ** -s if s <= 0 else (1 if g >= 0 else -1) * (abs(g) >> s))
    res = run_stream(dut, items, len(items), sideband=[(dut.shift, ss)], seed=9)
    assert res.outputs == [int(w) for w in want]


def test_the_default_configuration_rounds_gradients_with_lfsr_draws():
    config = Config()
    lams = sorted({lam for _, lam in config.lr_schedule})
    dut = StochasticRounder.from_config(config)
    assert (dut.g_width, dut.draw_bits) == (config.acc_bits, config.lfsr.draw_bits)
    assert (dut.min_shift, dut.max_shift) == (-max(lams), config.acc_bits - 1 - min(lams))
    assert dut.out_width == config.acc_bits + max(0, max(lams))
    rng = np.random.default_rng(3)
    # Gradient tensors of several magnitudes, with the QG shift of every learning rate of the
    # schedule; the smallest and largest shifts of the range included.
    gs, ss = [], []
    for lam in lams:
        for top in (0, 1, 100, 1 << 12, 1 << 20, (1 << (config.acc_bits - 1)) - 1):
            g = rng.integers(-top, top + 1, 25)
            g[0] = -top
            gs += [int(v) for v in g]
            shift = arith.qg_scale(g, lam)
            ss += [-lam if shift is None else shift] * len(g)
    assert min(ss) == dut.min_shift and max(ss) == dut.max_shift
    us = generate(config.lfsr, config.rng_seeds[0], len(gs))
    res = run_stream(dut, [{"g": g, "u": u} for g, u in zip(gs, us, strict=True)], len(gs),
                     sideband=[(dut.shift, ss)], seed=3)
    want = [_golden(g, s, u, config.lfsr.draw_bits) for g, s, u in zip(gs, ss, us, strict=True)]
    assert res.outputs == want


def test_full_throughput_and_exact_latency_without_stalls():
    dut = StochasticRounder(16, 8, 20, -4)
    rng = np.random.default_rng(4)
    n = 300
    gs = [int(v) for v in rng.integers(-(1 << 15), 1 << 15, n)]
    us = [int(v) for v in rng.integers(0, 256, n)]
    ss = [int(v) for v in rng.integers(-4, 21, n)]
    res = run_stream(dut, [{"g": g, "u": u} for g, u in zip(gs, us, strict=True)], n,
                     sideband=[(dut.shift, ss)], valid_prob=1, ready_prob=1)
    assert res.accept_cycles == list(range(n))
    assert_latency(res, dut.latency, exact=True)
    assert res.outputs == [_golden(g, s, u, 8) for g, s, u in zip(gs, ss, us, strict=True)]


def test_lfsr_bank_and_rounder_ports_fit_together():
    config = Config()
    m = Module()
    m.submodules.bank = bank = LfsrBank.from_config(config)
    m.submodules.rounder = rounder = StochasticRounder.from_config(config)
    assert bank.o.payload.shape().elem_shape == rounder.i.payload.shape()["u"].shape
    m.d.comb += rounder.i.payload.u.eq(bank.o.payload[0])
    Fragment.get(m, None)


def test_converts_to_verilog():
    text = verilog.convert(StochasticRounder(32, 16, 40, -8), name="stochastic_rounder")
    assert "module stochastic_rounder" in text and "shift" in text


@pytest.mark.parametrize(("args", "exc", "match"), [
    ((1, 16, 8), ValueError, r"Input width must be at least 2, not 1"),
    (("32", 16, 8), TypeError, r"Input width must be an integer, not '32'"),
    ((32, 0, 8), ValueError, r"Draw width must be at least 1, not 0"),
    ((32, 16, 8.0), TypeError, r"Maximum shift must be an integer, not 8\.0"),
    ((32, 16, 8, None), TypeError, r"Minimum shift must be an integer, not None"),
    ((32, 16, 3, 4), ValueError, r"Minimum shift 4 must not exceed maximum shift 3"),
    ((32, 16, 1 << 20), ValueError, r"Shifts must be from -65536 to 65536"),
])
def test_constructor_rejects_invalid_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        StochasticRounder(*args)


@pytest.mark.parametrize("schedule", [((0, 2), (30, 1), (50, 0), (65, -1)), ((0, -3),),
                                      ((0, 0), (5, 4))])
def test_config_out_width_is_the_width_of_the_configured_rounder(schedule):
    config = Config(lr_schedule=schedule)
    assert StochasticRounder.config_out_width(config) \
        == StochasticRounder.from_config(config).out_width
