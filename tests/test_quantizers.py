"""The integer quantizers of ``golden/arith.py`` against the float64 reference, element for element.

Every comparison converts between integer units and real values by powers of two only, which is
exact in float64 while the magnitudes stay below ``2 ** 53``; the arrays are then compared with
``assert_array_equal``, never with a tolerance (the statistics test excepted).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from intrain.config import Config
from intrain.golden import arith
from intrain.golden import reference as ref
from intrain.golden.lfsr import LfsrBank
from intrain.lfsr_spec import LfsrSpec

# Hypothesis reports a falsified example through libcst, whose import warns (DeprecationWarning
# from mypy_extensions); the project turns DeprecationWarning into an error, which would hide the
# report behind an internal error.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

FAST = settings(max_examples=150, deadline=None)
SLOW = settings(max_examples=60, deadline=None)


def _config(layers, bits="2-8-8-8", **kw) -> Config:
    """A configuration with wide accumulators and one fixed lane (cheap to build)."""
    kw.setdefault("acc_bits", 64)
    return Config(layers=tuple(layers), bits=bits, rng_lanes=1, rng_seeds=(1,), **kw)


def _half_point(p: int) -> int:
    """The smallest integer ``m`` with ``round(log2 m) = p + 1``: ``ceil(2 ** (p + 1/2))``."""
    return math.isqrt(1 << (2 * p + 1)) + 1


@st.composite
def int_tensors(draw, max_bits=40, max_size=48, min_size=1):
    """An int64 array (1-D or 2-D) whose magnitudes span a random number of bits."""
    bits = draw(st.integers(0, max_bits))
    rows = draw(st.integers(1, 4))
    cols = draw(st.integers(max(1, -(-min_size // rows)), max(1, max_size // rows)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lim = (1 << bits)
    x = rng.integers(-lim, lim + 1, size=(rows, cols), dtype=np.int64)
    if draw(st.booleans()):
        # Sparse: many exact zeros, as in masked errors.
        x[rng.random(x.shape) < 0.5] = 0
    return x if rows > 1 else x[0]


# ------------------------------------------------------------------------------------------------
# Primitives
# ------------------------------------------------------------------------------------------------
@FAST
@given(x=int_tensors(max_bits=40), s=st.integers(-10, 30))
def test_round_shift_is_rint_of_division(x, s):
    expected = np.rint(np.ldexp(x.astype(np.float64), -s)).astype(np.int64)
    np.testing.assert_array_equal(arith.round_shift(x, s), expected)


@FAST
@given(j=st.integers(-(2**30), 2**30), s=st.integers(1, 30))
def test_round_shift_ties_go_to_even(j, s):
    x = np.array([(2 * j + 1) << (s - 1), -((2 * j + 1) << (s - 1))], dtype=np.int64)
    got = arith.round_shift(x, s)
    np.testing.assert_array_equal(got % 2, 0)
    np.testing.assert_array_equal(np.abs(got * 2.0**s - x), 2.0 ** (s - 1))
    np.testing.assert_array_equal(got, np.rint(x / 2.0**s).astype(np.int64))


def test_round_shift_small_ties_exhaustive():
    x = np.arange(-4096, 4097, dtype=np.int64)
    for s in range(1, 8):
        np.testing.assert_array_equal(arith.round_shift(x, s),
                                      np.rint(x / 2.0**s).astype(np.int64))
    # 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -0.5 -> 0, 0.5 -> 0, 1.5 -> 2.
    np.testing.assert_array_equal(arith.round_shift([5, 7, -5, -1, 1, 3], 1), [2, 4, -2, 0, 0, 2])


@FAST
@given(x=int_tensors(max_bits=40), limit=st.integers(0, 2**20))
def test_saturate_is_symmetric_clip(x, limit):
    got = arith.saturate(x, limit)
    np.testing.assert_array_equal(got, np.clip(x, -limit, limit))
    assert got.dtype == np.int64
    assert np.all(np.abs(got) <= limit)


def _rl2_exact_ok(m: int, k: int) -> bool:
    """``2 ** (2k - 1) <= m * m < 2 ** (2k + 1)``, in integers."""
    return (m * m << 1) >= (1 << (2 * k)) and m * m < (1 << (2 * k + 1))


def test_rl2_exhaustive_16_bits():
    m = np.arange(1, 2**16 + 1, dtype=np.int64)
    got = np.array([arith.rl2(int(v)) for v in m], dtype=np.int64)
    np.testing.assert_array_equal(got, np.rint(np.log2(m.astype(np.float64))).astype(np.int64))
    mm = m * m  # < 2 ** 33: exact in int64
    np.testing.assert_array_equal(mm << 1 >= np.left_shift(1, 2 * got), True)
    np.testing.assert_array_equal(mm < np.left_shift(1, 2 * got + 1), True)


@FAST
@given(m=st.integers(1, 2**62))
def test_rl2_exact_for_large_m(m):
    k = arith.rl2(m)
    assert _rl2_exact_ok(m, k)
    assert k == ref.round_log2(m)


def test_rl2_at_every_half_point():
    for p in range(0, 62):
        t = _half_point(p)
        assert t * t > 1 << (2 * p + 1) > (t - 1) ** 2
        assert arith.rl2(t) == p + 1 == ref.round_log2(t)
        assert arith.rl2(t - 1) == p == ref.round_log2(t - 1)
        assert _rl2_exact_ok(t, p + 1) and _rl2_exact_ok(t - 1, p)
        if p < 24:  # the float logarithm is trustworthy this far from the half-point
            assert ref.Shift_float(t) == 2.0 ** (p + 1) and ref.Shift_float(t - 1) == 2.0**p


def test_rl2_rejects_non_positive():
    for m in (0, -1, -(2**40)):
        with pytest.raises(ValueError):
            arith.rl2(m)


@FAST
@given(x=st.floats(min_value=2.0**-60, max_value=2.0**60, allow_nan=False))
def test_reference_round_log2_is_exact_for_floats(x):
    k = ref.round_log2(x)
    # 2 ** (2k - 1) <= x ** 2 < 2 ** (2k + 1), with x = n / d exactly.
    n, d = x.as_integer_ratio()
    lo, hi = 2 * k - 1, 2 * k + 1
    assert (n * n << max(0, -lo)) >= (d * d << max(0, lo))
    assert (n * n << max(0, -hi)) < (d * d << max(0, hi))


def test_max_abs():
    assert arith.max_abs(np.zeros((0,), dtype=np.int64)) == 0
    assert arith.max_abs([[3, -7], [5, 0]]) == 7


# ------------------------------------------------------------------------------------------------
# QA
# ------------------------------------------------------------------------------------------------
def _plans_for_qa():
    """Distinct ``(out_shift, qa_shift, bits_a, a_max)`` of layers of many configurations."""
    seen = set()
    for w in range(2, 9):
        for a in range(2, 16):
            for input_bits in (2, 8, 16):
                cfg = _config((1, 64, 3000, 65536, 10), bits=f"{w}-{a}-{max(w, 8)}-8",
                              input_bits=input_bits)
                for p in cfg.plan:
                    seen.add((p.out_shift, p.qa_shift, p.bits.a, p.a_max))
    return sorted(seen)


QA_PLANS = _plans_for_qa()


def test_qa_plans_cover_negative_and_positive_shifts():
    shifts = {p[1] for p in QA_PLANS}
    assert min(shifts) < 0 < max(shifts) and 0 in shifts


@st.composite
def qa_cases(draw):
    out_shift, qa_shift, bits_a, a_max = draw(st.sampled_from(QA_PLANS))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 64))
    # Around the clip level, or anywhere in a random number of bits.
    if draw(st.booleans()):
        top = (a_max + 2) * 2.0**qa_shift
        lim = max(2, int(top * 1.2))
    else:
        lim = 1 << draw(st.integers(0, 40))
    lim = min(lim, 2 ** (52 + min(qa_shift, 0)))  # the products stay exact in float64
    acc = rng.integers(-lim, lim + 1, size=n, dtype=np.int64)
    return acc, out_shift, qa_shift, bits_a, a_max


@FAST
@given(case=qa_cases())
def test_qa_equals_reference(case):
    acc, out_shift, qa_shift, bits_a, a_max = case
    a, clipmask = arith.qa(acc, qa_shift, a_max)
    h = ref.relu(ref.acc_to_real(acc, out_shift))
    np.testing.assert_array_equal(a, ref.to_int(ref.QA(h, bits_a), bits_a))
    np.testing.assert_array_equal(clipmask, ref.clip_mask(h, bits_a))
    assert np.all(a >= 0) and np.all(a <= a_max)
    assert a.dtype == np.int64 and clipmask.dtype == bool


@pytest.mark.parametrize("plan", QA_PLANS, ids=lambda p: f"shift{p[1]}a{p[2]}")
def test_qa_clip_boundary_is_inclusive(plan):
    out_shift, qa_shift, bits_a, a_max = plan
    # The largest accumulator that passes the clip's gradient, and the next one.
    edge = a_max << qa_shift if qa_shift >= 0 else a_max >> -qa_shift
    acc = np.array([edge - 1, edge, edge + 1, 0, -1, -edge], dtype=np.int64)
    a, clipmask = arith.qa(acc, qa_shift, a_max)
    np.testing.assert_array_equal(clipmask, [True, True, False, True, True, True])
    h = ref.relu(ref.acc_to_real(acc, out_shift))
    np.testing.assert_array_equal(clipmask, ref.clip_mask(h, bits_a))
    np.testing.assert_array_equal(a, ref.to_int(ref.QA(h, bits_a), bits_a))
    assert a[1] == (a_max if qa_shift >= 0 else edge << -qa_shift)
    np.testing.assert_array_equal(a[3:], 0)


# ------------------------------------------------------------------------------------------------
# QE
# ------------------------------------------------------------------------------------------------
def _check_qe(x, bits_e):
    e_max = (1 << (bits_e - 1)) - 1
    got = arith.qe(x, e_max)
    expected = ref.to_int(ref.QE(np.asarray(x, dtype=np.float64), bits_e), bits_e)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64 and got.shape == np.shape(x)
    assert np.all(np.abs(got) <= e_max)
    return got


@FAST
@given(x=int_tensors(max_bits=52), bits_e=st.integers(2, 15))
def test_qe_equals_reference(x, bits_e):
    _check_qe(x, bits_e)


@FAST
@given(x=int_tensors(max_bits=50), p=st.integers(0, 50), up=st.booleans(),
       negative=st.booleans(), bits_e=st.sampled_from([2, 4, 8, 12, 15]))
def test_qe_max_at_half_point(x, p, up, negative, bits_e):
    m = _half_point(p) - (0 if up else 1)
    x = np.clip(x, -(m - 1), m - 1)
    x.flat[len(x.flat) // 2] = -m if negative else m
    got = _check_qe(x, bits_e)
    e_max = (1 << (bits_e - 1)) - 1
    top = abs(int(got.flat[len(x.flat) // 2]))
    if up:  # k = p + 1: the maximum scales to m / 2 ** (p + 1), about 0.707
        assert top == min(e_max, round(m * 2 ** (bits_e - 1) / 2 ** (p + 1)))
    else:  # k = p: the maximum scales to m / 2 ** p >= 1 and saturates
        assert top == e_max


@pytest.mark.parametrize("bits_e", [2, 3, 8, 15])
def test_qe_edge_cases(bits_e):
    e_max = (1 << (bits_e - 1)) - 1
    # All zero: zeros, no division by zero.
    for shape in [(1,), (5,), (3, 4)]:
        z = np.zeros(shape, dtype=np.int64)
        np.testing.assert_array_equal(_check_qe(z, bits_e), z)
    # A single non-zero element: below a half-point it saturates to +-e_max; above one it
    # scales to |v| / 2 ** ceil(log2 |v|) of the clip level, at least 0.707.
    for v in [1, -1, 3, -3, 181, 182, -(2**40), 2**52 - 1, 2**40 + 2**39]:
        x = np.zeros(7, dtype=np.int64)
        x[3] = v
        got = _check_qe(x, bits_e)
        assert np.count_nonzero(got) == 1 and np.sign(got[3]) == np.sign(v)
        if v in (1, -1, 181, -(2**40), 2**52 - 1):
            assert abs(got[3]) == e_max
        else:
            k = math.floor(math.log2(abs(v))) + 1
            assert abs(got[3]) == min(e_max, round(abs(v) * 2 ** (bits_e - 1) / 2**k))
    # Negative maximum; and values that saturate to both ends.
    _check_qe(np.array([-1000, 999, 3, -1], dtype=np.int64), bits_e)
    _check_qe(np.array([[-181, 181], [-180, 180]], dtype=np.int64), bits_e)
    _check_qe(np.array([1, 2, 3, -4, 5], dtype=np.int64), bits_e)


def test_qe_ties_round_to_even():
    # max 8 -> k = 3: x * 2 ** (7 - 3) = 16 x. max 2048 -> k = 11: round(x / 16).
    x = np.array([2048, 8, 24, 40, -8, -24, 1], dtype=np.int64)
    np.testing.assert_array_equal(_check_qe(x, 8), [127, 0, 2, 2, 0, -2, 0])


# ------------------------------------------------------------------------------------------------
# QG and stochastic rounding
# ------------------------------------------------------------------------------------------------
@FAST
@given(g=int_tensors(max_bits=40), lam=st.integers(-8, 4), bits_g=st.integers(2, 15),
       draw_bits=st.sampled_from([1, 4, 8, 16]), seed=st.integers(0, 2**32 - 1))
def test_qg_equals_reference_with_identical_draws(g, lam, bits_g, draw_bits, seed):
    draws = np.random.default_rng(seed).integers(0, 1 << draw_bits, size=g.shape)
    got = arith.qg(g, lam, draws, draw_bits)
    expected = ref.to_int(ref.QG(g, lam, bits_g, draws=draws, draw_bits=draw_bits), bits_g)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64
    # The update is G * 2 ** (lam - k) rounded down or up in magnitude, never further.
    k = arith.rl2(arith.max_abs(g)) if np.any(g) else 0
    exact = np.ldexp(np.abs(g).astype(np.float64), lam - k)
    assert np.all(np.abs(got) >= np.floor(exact)) and np.all(np.abs(got) <= np.ceil(exact))
    np.testing.assert_array_equal(np.sign(got)[got != 0], np.sign(g)[got != 0])


@FAST
@given(g=int_tensors(max_bits=40), shift=st.integers(-8, 50), seed=st.integers(0, 2**32 - 1))
def test_stochastic_round_draws_extremes(g, shift, seed):
    mag = np.abs(g)
    floor = mag >> shift if shift > 0 else mag << -shift
    # u = 2**16 - 1 never rounds up (a 16-bit fraction is at most 2**16 - 1).
    hi = np.full(g.shape, 2**16 - 1)
    np.testing.assert_array_equal(arith.stochastic_round(g, shift, hi), np.sign(g) * floor)
    # u = 0 rounds up exactly where the truncated fraction is non-zero.
    if shift > 0:
        frac16 = (mag & ((1 << shift) - 1)) * 2.0 ** (16 - shift)
        up = np.floor(frac16) > 0
    else:
        up = np.zeros(g.shape, dtype=bool)
    lo = np.zeros(g.shape, dtype=np.int64)
    np.testing.assert_array_equal(arith.stochastic_round(g, shift, lo), np.sign(g) * (floor + up))


@FAST
@given(g=int_tensors(max_bits=30), extra=st.integers(0, 8), seed=st.integers(0, 2**32 - 1))
def test_qg_without_fraction_never_rounds_up(g, extra, seed):
    assume(np.any(g))
    k = arith.rl2(arith.max_abs(g))
    lam = k + extra  # shift = k - lam <= 0: an exact left shift
    assert arith.qg_scale(g, lam) == -extra
    for draws in (np.zeros(g.shape, dtype=np.int64), np.full(g.shape, 2**16 - 1),
                  np.random.default_rng(seed).integers(0, 2**16, size=g.shape)):
        got = arith.qg(g, lam, draws)
        np.testing.assert_array_equal(got, g << extra)
        np.testing.assert_array_equal(
            got, ref.to_int(ref.QG(g, lam, 8, draws=draws), 8))


@pytest.mark.parametrize("lam", [-8, 0, 4])
def test_qg_zero_gradient_gives_zero_update(lam):
    for shape in [(1,), (4,), (3, 5)]:
        g = np.zeros(shape, dtype=np.int64)
        draws = np.zeros(shape, dtype=np.int64)
        assert arith.qg_scale(g, lam) is None
        got = arith.qg(g, lam, draws)
        np.testing.assert_array_equal(got, 0)
        assert got.shape == shape and got.dtype == np.int64
        np.testing.assert_array_equal(ref.QG(g, lam, 8, draws=draws), 0)
        np.testing.assert_array_equal(ref.QG(g, lam, 8, uniforms=draws / 2.0**16), 0)


def test_reference_qg_needs_one_kind_of_draw():
    with pytest.raises(ValueError):
        ref.QG(np.ones(3), 0, 8)
    with pytest.raises(ValueError):
        ref.QG(np.ones(3), 0, 8, draws=np.zeros(3), uniforms=np.zeros(3))


# Values of g = G * 2 ** (lam - k) (the update before rounding), fractions of several kinds.
STAT_VALUES = [0.5, 0.25, 0.1, 0.9, 1 / 3, 0.999, 0.0001, 1.0, 2.3, -1.7, -0.05, 5.75, -7.0625]
N_STAT = 100_000


def _assert_unbiased(samples, mean_expected, bias_bound=0.0):
    samples = np.asarray(samples, dtype=np.float64)
    mean, std = samples.mean(), samples.std(ddof=1)
    tol = 5 * std / math.sqrt(len(samples)) + bias_bound
    assert abs(mean - mean_expected) <= tol, (mean, mean_expected, tol)
    # Only the two neighbouring integers occur.
    assert set(np.unique(samples)) <= {math.floor(mean_expected), math.ceil(mean_expected)}


@pytest.mark.parametrize("value", STAT_VALUES)
def test_stochastic_round_is_unbiased(value):
    shift = 24  # 24 fraction bits: the 16-bit truncation biases by less than 2 ** -16
    g = round(value * 2**shift)
    v = g / 2**shift
    rng = np.random.default_rng(12345)
    draws = rng.integers(0, 2**16, size=N_STAT)
    samples = arith.stochastic_round(np.full(N_STAT, g, dtype=np.int64), shift, draws)
    _assert_unbiased(samples, v, bias_bound=2.0**-16)
    # With a fraction of at most 16 bits there is no truncation bias at all.
    g16 = round(value * 2**16)
    s16 = arith.stochastic_round(np.full(N_STAT, g16, dtype=np.int64), 16, draws)
    _assert_unbiased(s16, g16 / 2**16)


@pytest.mark.parametrize("value", STAT_VALUES[:6])
def test_stochastic_round_is_unbiased_with_lfsr_draws(value):
    bank = LfsrBank(LfsrSpec(), LfsrSpec().lane_seeds(7, 4))
    draws = bank.draw(N_STAT // 4).reshape(-1)
    g16 = round(value * 2**16)
    samples = arith.stochastic_round(np.full(draws.shape, g16, dtype=np.int64), 16, draws)
    _assert_unbiased(samples, g16 / 2**16)


@pytest.mark.parametrize("lam", [-2, 0, 3])
@pytest.mark.parametrize("c", [3, 5, 7, 11, 1000003, 12345678901])
def test_qg_is_unbiased_integer_and_reference(lam, c):
    g = np.full(N_STAT, c, dtype=np.int64)
    k = arith.rl2(c)
    expected = c * 2.0 ** (lam - k)  # exact: the update before rounding
    rng = np.random.default_rng(c + lam)
    draws = rng.integers(0, 2**16, size=N_STAT)
    _assert_unbiased(arith.qg(g, lam, draws), expected, bias_bound=2.0**-16)
    # The reference with float uniforms, as the reference code draws them (kG = 8).
    dw = ref.QG(g.astype(np.float64), lam, 8, uniforms=rng.random(N_STAT))
    _assert_unbiased(ref.to_int(dw, 8), expected)


# ------------------------------------------------------------------------------------------------
# Weights
# ------------------------------------------------------------------------------------------------
def test_ternary_forward_weights_exhaustive():
    p = _config((16, 4), bits="2-8-8-8").plan[0]
    assert (p.t_shift, p.t_max, p.w_max) == (6, 1, 64)
    w = np.arange(-64, 65, dtype=np.int64)
    t = arith.forward_weights(w, p.t_shift, p.t_max)
    np.testing.assert_array_equal(t, np.where(np.abs(w) > 32, np.sign(w), 0))
    assert t[w == 32] == 0 and t[w == -32] == 0 and t[w == 33] == 1 and t[w == -33] == -1
    np.testing.assert_array_equal(t, ref.to_int(ref.W(ref.to_real(w, 8), 2), 2))


@pytest.mark.parametrize("bits_w", range(2, 9))
def test_forward_weights_equal_reference_exhaustive(bits_w):
    for bits_g in range(bits_w, 17):
        for clip in ("code", "paper"):
            p = _config((16, 4), bits=f"{bits_w}-8-{bits_g}-8", weight_clip=clip).plan[0]
            top = (1 << (bits_g - 1)) - 1  # every stored value a k_G-bit code can hold
            w = np.arange(-top, top + 1, dtype=np.int64)
            t = arith.forward_weights(w, p.t_shift, p.t_max)
            np.testing.assert_array_equal(t, ref.to_int(ref.W(ref.to_real(w, bits_g), bits_w),
                                                        bits_w))
            assert np.abs(t).max() == p.t_max
    # The weights after initialisation: uniform, quantized to the k_W grid.
    assert p.init_limit == pytest.approx(ref.init_limit(16, bits_w), rel=2**-51)


@SLOW
@given(bits=st.sampled_from([(w, g) for w in range(2, 9) for g in range(w, 16)]),
       clip=st.sampled_from(["code", "paper"]), seed=st.integers(0, 2**32 - 1),
       n=st.integers(1, 200))
def test_update_weights_clips_like_reference(bits, clip, seed, n):
    bits_w, bits_g = bits
    p = _config((16, 4), bits=f"{bits_w}-8-{bits_g}-8", weight_clip=clip).plan[0]
    rng = np.random.default_rng(seed)
    w = rng.integers(-p.w_max, p.w_max + 1, size=n)
    dw = rng.integers(-3 * p.w_max, 3 * p.w_max + 1, size=n)
    got = arith.update_weights(w, dw, p.w_max)
    np.testing.assert_array_equal(got, np.clip(w - dw, -p.w_max, p.w_max))
    assert np.all(np.abs(got) <= p.w_max)
    bits_clip = bits_w if clip == "code" else bits_g
    expected = ref.update(ref.to_real(w, bits_g), ref.to_real(dw, bits_g), bits_clip)
    np.testing.assert_array_equal(got, ref.to_int(expected, bits_g))


def test_update_weights_clip_values():
    p = _config((16, 4)).plan[0]
    got = arith.update_weights([64, -64, 0, 60], [-1, 1, 200, -10], p.w_max)
    np.testing.assert_array_equal(got, [64, -64, -64, 64])
    paper = _config((16, 4), weight_clip="paper").plan[0]
    assert paper.w_max == 127
    np.testing.assert_array_equal(arith.update_weights([127, 0], [-5, 300], 127), [127, -127])


# ------------------------------------------------------------------------------------------------
# The per-layer constants of Config.plan
# ------------------------------------------------------------------------------------------------
def _n_in_values():
    values = set(range(1, 3001))
    values |= {1 << j for j in range(17)}
    # 3 n / 4 ** kW closest to an odd power of two: the hardest cases for round(log2).
    for m in range(1, 18):
        for d in (-1, 1):
            if ((1 << m) + d) % 3 == 0 and 0 < ((1 << m) + d) // 3 <= 65536:
                values.add(((1 << m) + d) // 3)
    values |= set(np.random.default_rng(3).integers(3001, 65537, size=1000).tolist())
    return sorted(v for v in values if v <= 65536)


N_IN = _n_in_values()


@pytest.mark.parametrize("bits_w", range(2, 9))
def test_plan_alpha_equals_reference(bits_w):
    cfg = _config(N_IN + [1], bits=f"{bits_w}-8-8-8")
    for p in cfg.plan:
        a = ref.alpha(p.n_in, bits_w)
        assert 2.0**p.alpha_log2 == a, (p.n_in, bits_w)
        assert a == max(ref.Shift_float(ref.L_min(bits_w) / ref.L_init(p.n_in)), 1.0)
        assert p.label == 1 << p.out_shift
        in_bits = cfg.input_bits if p.index == 1 else 8
        assert p.out_shift == (bits_w - 1) + (in_bits - 1) + p.alpha_log2
        assert p.qa_shift == p.out_shift - (p.bits.a - 1)
        # A float used only to draw the initial weights: within one rounding of the reference.
        assert p.init_limit == pytest.approx(ref.init_limit(p.n_in, bits_w), rel=2**-51)


@SLOW
@given(layers=st.lists(st.integers(1, 300), min_size=2, max_size=4),
       bits=st.lists(st.tuples(st.integers(2, 8), st.integers(2, 15)), min_size=1, max_size=3),
       input_bits=st.integers(2, 15), batch=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_forward_pass_real_values_equal_reference(layers, bits, input_bits, batch, seed):
    """``acc * 2 ** -out_shift`` is the reference's ``(W / alpha) . A`` and QA agrees on it."""
    n_layers = len(layers) - 1
    bits = [bits[i % len(bits)] for i in range(n_layers)]
    cfg = _config(layers, bits=tuple(f"{w}-{a}-8-8" for w, a in bits), input_bits=input_bits)
    rng = np.random.default_rng(seed)
    in_max = (1 << (input_bits - 1)) - 1
    a_int = rng.integers(-in_max, in_max + 1, size=(layers[0], batch))
    a_real = ref.to_real(a_int, input_bits)
    for p in cfg.plan:
        w_int = rng.integers(-p.w_max, p.w_max + 1, size=(p.n_out, p.n_in))
        t = arith.forward_weights(w_int, p.t_shift, p.t_max)
        w_real = ref.W(ref.to_real(w_int, p.bits.g), p.bits.w) / ref.alpha(p.n_in, p.bits.w)
        acc = t @ a_int
        out_real = w_real @ a_real
        np.testing.assert_array_equal(ref.acc_to_real(acc, p.out_shift), out_real)
        if p.last:
            break
        a_int, _ = arith.qa(acc, p.qa_shift, p.a_max)
        a_real = ref.QA(ref.relu(out_real), p.bits.a)
        np.testing.assert_array_equal(a_int, ref.to_int(a_real, p.bits.a))


# ------------------------------------------------------------------------------------------------
# int32 inputs (the golden model's narrow tensors): same values, dtype kept
# ------------------------------------------------------------------------------------------------
def _same_as_int64(fn, *args):
    """``fn`` on int32 arrays equals ``fn`` on int64 arrays, and keeps int32."""
    narrow = [a.astype(np.int32) if isinstance(a, np.ndarray) else a for a in args]
    wide = [a.astype(np.int64) if isinstance(a, np.ndarray) else a for a in args]
    got, expected = fn(*narrow), fn(*wide)
    if isinstance(got, tuple):
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g, e)
        got = got[0]
    else:
        np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int32
    return got


@FAST
@given(x=int_tensors(max_bits=29), s=st.integers(-1, 30), limit=st.integers(0, 2**30),
       bits_e=st.integers(2, 15), lam=st.integers(-8, 4), seed=st.integers(0, 2**32 - 1))
def test_int32_inputs_give_int64_results(x, s, limit, bits_e, lam, seed):
    draws = np.random.default_rng(seed).integers(0, 2**16, size=x.shape)
    _same_as_int64(arith.round_shift, x, s)
    _same_as_int64(arith.saturate, x, limit)
    _same_as_int64(arith.qe, x, (1 << (bits_e - 1)) - 1)
    _same_as_int64(arith.qg, x, lam, draws)
    _same_as_int64(arith.qa, x, max(s, 0) % 21, (1 << (bits_e - 1)) - 1)
    _same_as_int64(arith.qa, x >> 20, -(s % 8), 127)
    w = np.clip(x, -127, 127)
    for t_shift, t_max in [(6, 1), (5, 1), (4, 7), (0, 127)]:
        _same_as_int64(arith.forward_weights, w, t_shift, t_max)
    _same_as_int64(arith.update_weights, w, x >> 20, 64)


# ------------------------------------------------------------------------------------------------
# The reference's unit helpers
# ------------------------------------------------------------------------------------------------
def test_reference_unit_conversions():
    n = np.array([-127, -1, 0, 1, 64, 127])
    np.testing.assert_array_equal(ref.to_real(n, 8), n / 128.0)
    np.testing.assert_array_equal(ref.to_int(ref.to_real(n, 8), 8), n)
    np.testing.assert_array_equal(ref.acc_to_real([256, -3], 8), [1.0, -3 / 256])
    with pytest.raises(ValueError):
        ref.to_int([0.3], 8)
    with pytest.raises(ValueError):
        ref.scale_to_int([2.0**60], 0)
    assert ref.S(8) == 128.0 and ref.Shift(0.7) == 0.5
    assert ref.Shift(0.71) == 1.0 == ref.Shift_float(0.71)
    # bits > 15: the reference code neither clips with a delta nor rounds.
    np.testing.assert_array_equal(ref.C([2.0, -2.0], 16), [1.0, -1.0])
    np.testing.assert_array_equal(ref.Q([0.123], 16), [0.123])
    np.testing.assert_array_equal(ref.Q([0.3, -0.2, 0.0], 1), [1.0, -1.0, 0.0])
    with pytest.raises(ValueError):
        ref.round_log2(0.0)
    with pytest.raises(ValueError):
        ref.round_log2(float("inf"))
