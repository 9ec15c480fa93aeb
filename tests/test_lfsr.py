"""The random-number generators: the vectorised bank against the scalar reference, maximal period
(by exhaustion for 16 bits, algebraically for 32), no lock-up, lane seeds and validation."""

from __future__ import annotations

import numpy as np
import pytest

from intrain.config import Config
from intrain.errors import ConfigError
from intrain.golden.lfsr import LfsrBank, generate
from intrain.lfsr_spec import LfsrSpec, apply_map, compose_maps, power_map

SPEC32 = LfsrSpec()  # width 32, taps (32, 22, 2, 1), 16-bit draws
TAPS16 = (16, 15, 13, 4)
SPEC16 = LfsrSpec(width=16, taps=TAPS16, draw_bits=16)
SPEC64 = LfsrSpec(width=64, taps=(64, 63, 61, 60), draw_bits=16)

DRAW_SIZES = (1, 7, 1000, 4097)


def _identity(width: int) -> tuple[int, ...]:
    return tuple(1 << j for j in range(width))


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def _gf2_rank(columns) -> int:
    """Rank over GF(2) of the vectors given as integers (Gaussian elimination on an XOR basis)."""
    basis: dict[int, int] = {}  # leading bit -> vector
    for v in columns:
        while v:
            top = v.bit_length() - 1
            if top not in basis:
                basis[top] = v
                break
            v ^= basis[top]
    return len(basis)


def _steps(spec: LfsrSpec, state: int, n: int) -> int:
    for _ in range(n):
        state = spec.step(state)
    return state


# ------------------------------------------------------------------------------------------------
# The single step and the draw, from their definition
# ------------------------------------------------------------------------------------------------
def test_step_is_the_fibonacci_shift():
    rng = np.random.default_rng(0)
    for spec in (SPEC16, SPEC32, SPEC64):
        for state in rng.integers(1, 2**62, size=200).tolist():
            state &= spec.mask
            fb = 0
            for t in spec.taps:
                fb ^= (state >> (t - 1)) & 1
            assert spec.step(state) == ((state << 1) & spec.mask) | fb
            assert apply_map(spec.step_map, state) == spec.step(state)


@pytest.mark.parametrize("spec", [SPEC16, LfsrSpec(16, TAPS16, 4), LfsrSpec(16, TAPS16, 1), SPEC32,
                                  LfsrSpec(draw_bits=32), SPEC64],
                         ids=["16/16", "16/4", "16/1", "32/16", "32/32", "64/16"])
def test_draw_is_the_bits_shifted_out_then_a_leap(spec):
    rng = np.random.default_rng(1)
    for state in rng.integers(1, 2**62, size=100).tolist():
        state &= spec.mask
        state = state or 1
        word, nxt = spec.draw(state)
        # The word is the bits that the next draw_bits single steps shift out, first one on top.
        s, bits = state, 0
        for _ in range(spec.draw_bits):
            bits = (bits << 1) | (s >> (spec.width - 1))
            s = spec.step(s)
        assert word == bits and 0 <= word < 1 << spec.draw_bits
        assert nxt == s


def test_power_map_and_leap():
    m = SPEC32.step_map
    assert power_map(m, 0) == _identity(32)
    assert power_map(m, 1) == m
    acc = _identity(32)
    for n in range(1, 40):
        acc = compose_maps(m, acc)
        assert power_map(m, n) == acc
    with pytest.raises(ValueError):
        power_map(m, -1)
    assert SPEC32.leap(12345, 0) == 12345
    assert SPEC32.leap(12345, 3) == _steps(SPEC32, 12345, 48)


# ------------------------------------------------------------------------------------------------
# The vectorised bank against the scalar reference
# ------------------------------------------------------------------------------------------------
BANK_CASES = [
    (SPEC32, 8), (SPEC32, 1), (SPEC16, 3), (LfsrSpec(16, TAPS16, 4), 3),
    (LfsrSpec(16, TAPS16, 1), 2), (LfsrSpec(draw_bits=7), 2), (LfsrSpec(draw_bits=8), 3),
    (SPEC64, 2), (LfsrSpec(width=64, taps=(64, 63, 61, 60), draw_bits=13), 1),
]
BANK_PARAMS = [pytest.param(s, n, id=f"w{s.width}d{s.draw_bits}x{n}") for s, n in BANK_CASES]
BANK_PARAMS += [pytest.param(LfsrSpec(draw_bits=32), 2, id="w32d32x2"),
                pytest.param(LfsrSpec(width=64, taps=(64, 63, 61, 60), draw_bits=32), 1,
                             id="w64d32x1")]


@pytest.mark.parametrize("spec,lanes", BANK_PARAMS)
def test_bank_equals_scalar_reference(spec, lanes):
    seeds = spec.lane_seeds(2024 + lanes, lanes)
    bank = LfsrBank(spec, seeds)
    assert bank.lanes == lanes
    chunks = [bank.draw(n) for n in DRAW_SIZES]
    for n, c in zip(DRAW_SIZES, chunks, strict=True):
        assert c.shape == (n, lanes) and c.dtype.kind in "iu"
    words = np.concatenate(chunks)
    total = sum(DRAW_SIZES)
    for lane, seed in enumerate(seeds):
        np.testing.assert_array_equal(words[:, lane], generate(spec, seed, total))
        assert int(bank.state[lane]) == spec.leap(seed, total)
    assert np.all(words >= 0) and np.all(words < 1 << spec.draw_bits)


@pytest.mark.parametrize("block", [1, 2, 8])
@pytest.mark.parametrize("spec", [SPEC32, SPEC16, LfsrSpec(16, TAPS16, 1)],
                         ids=["32", "16", "16/1"])
def test_bank_small_blocks_and_many_calls(spec, block):
    """Many small draws, so that the word buffer is extended and compacted many times."""
    seeds = spec.lane_seeds(5, 3)
    bank = LfsrBank(spec, seeds, block=block)
    sizes = [1, 3, 5, 64, 333, 2, 1, 700, 17] * 3
    words = np.concatenate([bank.draw(n) for n in sizes])
    for lane, seed in enumerate(seeds):
        np.testing.assert_array_equal(words[:, lane], generate(spec, seed, sum(sizes)))
        assert int(bank.state[lane]) == spec.leap(seed, sum(sizes))
    # Reading the state does not advance the lanes.
    state = int(bank.state[0])
    assert int(bank.state[0]) == state
    np.testing.assert_array_equal(bank.draw(4)[:, 0], generate(spec, state, 4))


def test_bank_draw_zero_and_bad_seed():
    bank = LfsrBank(SPEC32, [1, 2, 3])
    assert bank.draw(0).shape == (0, 3)
    np.testing.assert_array_equal(bank.state, [1, 2, 3])  # nothing advanced
    with pytest.raises(ValueError):
        LfsrBank(SPEC32, [1, 0])


def test_bank_with_config_seeds():
    cfg = Config()
    bank = LfsrBank(cfg.lfsr, cfg.rng_seeds)
    first = bank.draw(5)
    for lane, seed in enumerate(cfg.rng_seeds):
        np.testing.assert_array_equal(first[:, lane], generate(cfg.lfsr, seed, 5))


# ------------------------------------------------------------------------------------------------
# Maximal length
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 0xACE1, 0xFFFF])
def test_16_bit_single_step_has_full_period(seed):
    seen = np.zeros(1 << 16, dtype=bool)
    state = seed
    for _ in range(2**16 - 1):
        assert not seen[state]
        seen[state] = True
        state = SPEC16.step(state)
    assert state == seed  # back after exactly 2**16 - 1 steps, every non-zero state once
    assert seen[1:].all() and not seen[0]


@pytest.mark.parametrize("draw_bits", [16, 4, 1])
def test_16_bit_draw_sequence_has_full_period(draw_bits):
    spec = LfsrSpec(width=16, taps=TAPS16, draw_bits=draw_bits)
    seed = 0x1D2C
    seen = np.zeros(1 << 16, dtype=bool)
    state = seed
    for _ in range(2**16 - 1):
        assert not seen[state]
        seen[state] = True
        _, state = spec.draw(state)
    assert state == seed and seen[1:].all()
    # The words repeat with the same period (checked on the vectorised bank).
    words = LfsrBank(spec, [seed]).draw(2**16 - 1 + 500)[:, 0]
    np.testing.assert_array_equal(words[:500], words[2**16 - 1:])
    # And not earlier, for any proper divisor of the period.
    for p in (3, 5, 17, 257):
        assert spec.leap(seed, (2**16 - 1) // p) != seed


@pytest.mark.parametrize("spec,primes", [
    (SPEC32, (3, 5, 17, 257, 65537)),
    (SPEC16, (3, 5, 17, 257)),
])
def test_maximal_length_algebraically(spec, primes):
    """The step map has order exactly ``2**width - 1``: it is the identity at that power and at no
    power ``(2**width - 1) / p`` for a prime ``p`` of the period. Its characteristic polynomial is
    therefore primitive, and every non-zero state lies on one cycle."""
    period = 2**spec.width - 1
    assert spec.period == period
    assert all(_is_prime(p) for p in primes) and np.prod(primes, dtype=object) == period
    ident = _identity(spec.width)
    for m in (spec.step_map, spec.leap_map):  # draws leap gcd(draw_bits, period) = 1 steps
        assert power_map(m, period) == ident
        for p in primes:
            assert power_map(m, period // p) != ident, p


def test_no_lock_up():
    for spec in (SPEC16, SPEC32, SPEC64, LfsrSpec(16, TAPS16, 1)):
        assert spec.step(0) == 0 and spec.draw(0) == (0, 0)  # zero is a fixed point
        # The step and the leap are invertible: no non-zero state maps to zero.
        assert _gf2_rank(spec.step_map) == spec.width
        assert _gf2_rank(spec.leap_map) == spec.width
    # Exhaustively for 16 bits: the step is a permutation of the non-zero states.
    states = np.arange(1 << 16, dtype=np.int64)
    image = np.zeros_like(states)
    for j, col in enumerate(SPEC16.step_map):
        image ^= np.where((states >> j) & 1, col, 0)
    assert image[0] == 0 and np.all(image[1:] != 0)
    assert len(np.unique(image)) == 1 << 16


def test_gf2_rank_helper():
    assert _gf2_rank([1, 2, 3]) == 2 and _gf2_rank([0, 0]) == 0 and _gf2_rank(_identity(8)) == 8


# ------------------------------------------------------------------------------------------------
# Lane seeds
# ------------------------------------------------------------------------------------------------
def _advance(spec: LfsrSpec, state: int, steps: int) -> int:
    """``steps`` single steps, as whole draws (leaps) and then single steps."""
    q, r = divmod(steps, spec.draw_bits)
    return _steps(spec, spec.leap(state, q), r)


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
@pytest.mark.parametrize("lanes", [1, 2, 3, 8, 64])
def test_config_lane_seeds(seed, lanes):
    cfg = Config(seed=seed, rng_lanes=lanes)
    seeds = cfg.rng_seeds
    assert len(seeds) == lanes and len(set(seeds)) == lanes
    assert all(0 < s <= cfg.lfsr.mask for s in seeds)
    assert Config(seed=seed, rng_lanes=lanes).rng_seeds == seeds  # deterministic
    other = Config(seed=seed + 1 if seed < 2**63 - 1 else seed - 1, rng_lanes=lanes).rng_seeds
    assert not set(other) & set(seeds)
    spacing = cfg.lfsr.period // lanes
    for a, b in zip(seeds, seeds[1:], strict=False):
        assert b == _advance(cfg.lfsr, a, spacing)


def test_config_lane_seeds_spacing_16_bit_by_walking():
    lanes = 5
    cfg = Config(rng_lanes=lanes, lfsr=SPEC16, seed=99)
    seeds = cfg.rng_seeds
    position = {}
    state = seeds[0]
    for i in range(2**16 - 1):
        position[state] = i
        state = SPEC16.step(state)
    assert [position[s] for s in seeds] == [i * ((2**16 - 1) // lanes) for i in range(lanes)]


def test_config_seeds_follow_seed_changes():
    cfg = Config(seed=3)
    assert cfg.replace(seed=4).rng_seeds == Config(seed=4).rng_seeds != cfg.rng_seeds
    assert cfg.replace(rng_lanes=3).rng_seeds == Config(seed=3, rng_lanes=3).rng_seeds
    given = Config(rng_lanes=2, rng_seeds=(5, 9))
    assert given.rng_seeds == (5, 9)
    assert Config.from_dict(cfg.to_dict()).rng_seeds == cfg.rng_seeds


def test_config_rejects_bad_seeds():
    with pytest.raises(ConfigError, match=r"rng_seeds\[1\] must be an integer from 1 to"):
        Config(rng_lanes=2, rng_seeds=(1, 0))
    with pytest.raises(ConfigError, match=r"rng_seeds\[0\] must be an integer from 1 to 65535"):
        Config(rng_lanes=1, rng_seeds=(1 << 16,), lfsr=SPEC16)
    with pytest.raises(ConfigError, match=r"rng_seeds\[0\] must be an integer from 1 to"):
        Config(rng_lanes=1, rng_seeds=(-3,))
    with pytest.raises(ConfigError, match="rng_seeds must be distinct"):
        Config(rng_lanes=3, rng_seeds=(7, 8, 7))
    with pytest.raises(ConfigError, match=r"one seed per lane \(4\), not 3"):
        Config(rng_lanes=4, rng_seeds=(1, 2, 3))
    with pytest.raises(ConfigError, match=r"one seed per lane \(1\), not 2"):
        Config(rng_seeds=(1, 2), rng_lanes=1)
    with pytest.raises(ConfigError, match="rng_lanes must be an integer from 1"):
        Config(rng_lanes=0)


# ------------------------------------------------------------------------------------------------
# LfsrSpec validation
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [3, 0, -16, 65, 128, 16.0, "32", None])
def test_spec_rejects_bad_width(width):
    with pytest.raises(ConfigError, match="lfsr.width must be an integer from 4 to 64"):
        LfsrSpec(width=width, taps=(16, 15, 13, 4))


@pytest.mark.parametrize("taps", [(), (22, 2, 1), (32, 33), (32, 0), (32, -1), (32, 32, 1),
                                  (32, 2.0), (32, "1")])
def test_spec_rejects_bad_taps(taps):
    with pytest.raises(ConfigError, match="lfsr.taps must be distinct integers from 1 to 32"):
        LfsrSpec(width=32, taps=taps)


@pytest.mark.parametrize("draw_bits", [0, -1, 33, 1.5, "16"])
def test_spec_rejects_bad_draw_bits(draw_bits):
    with pytest.raises(ConfigError, match="lfsr.draw_bits must be an integer from 1 to 32"):
        LfsrSpec(draw_bits=draw_bits)


def test_spec_accepts_lists_and_config_dicts():
    assert LfsrSpec(taps=[32, 22, 2, 1]).taps == (32, 22, 2, 1)
    cfg = Config(lfsr={"width": 16, "taps": [16, 15, 13, 4], "draw_bits": 4})
    assert cfg.lfsr == LfsrSpec(16, TAPS16, 4)
    with pytest.raises(ConfigError, match="lfsr.width"):
        Config(lfsr={"width": 70, "taps": [70]})


@pytest.mark.parametrize("taps", [(16,), (16, 8), (16, 14), (16, 15, 13, 5)])
def test_spec_refuses_taps_that_are_not_maximal_length(taps):
    with pytest.raises(ConfigError, match="not maximal-length"):
        LfsrSpec(width=16, taps=taps)
