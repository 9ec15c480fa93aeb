"""The random-number generators of the stochastic rounder, as a linear map over GF(2).

One source of truth for the generator: the golden twin (``intrain.golden.lfsr``) and the hardware
(``intrain.hdl``) are both built from :class:`LfsrSpec`.

The generator is a Fibonacci LFSR that shifts left: one step computes the feedback bit as the XOR
of the tapped bits (tap ``n`` is bit ``n - 1``, XAPP052 numbering), shifts the state left by one
and puts the feedback bit in bit 0. The bit shifted out is bit ``width - 1``. A *draw* takes the
top ``draw_bits`` bits of the state (exactly the bits the next ``draw_bits`` steps shift out) and
then advances the state by ``draw_bits`` steps at once (leap-forward). The all-zero state maps to
itself (XOR form lock-up); every non-zero state lies on the one cycle of length
``2**width - 1`` when the taps are maximal-length, so a non-zero seed never reaches it.

A linear map on ``width``-bit states is stored as a tuple of ``width`` column images:
``columns[j]`` is the image of the state with only bit ``j`` set.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property, lru_cache

from intrain.errors import ConfigError

__all__ = ["LfsrSpec", "apply_map", "compose_maps", "power_map"]


def apply_map(columns: tuple[int, ...], state: int) -> int:
    """Apply a GF(2) linear map (given by its column images) to one state."""
    out = 0
    j = 0
    while state:
        if state & 1:
            out ^= columns[j]
        state >>= 1
        j += 1
    return out


def compose_maps(outer: tuple[int, ...], inner: tuple[int, ...]) -> tuple[int, ...]:
    """The map ``outer(inner(x))``."""
    return tuple(apply_map(outer, c) for c in inner)


def power_map(columns: tuple[int, ...], n: int) -> tuple[int, ...]:
    """The map applied ``n`` times (``n >= 0``), by repeated squaring."""
    if n < 0:
        raise ValueError(f"Map power must be non-negative, not {n!r}")
    result = tuple(1 << j for j in range(len(columns)))
    base = columns
    while n:
        if n & 1:
            result = compose_maps(base, result)
        base = compose_maps(base, base)
        n >>= 1
    return result


def _is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3 * 10**24 (enough for 2**64 - 1)."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in small:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime_factors(n: int) -> set[int]:
    """Distinct prime factors (Pollard's rho; fast for numbers of 64 bits)."""
    if n == 1:
        return set()
    if _is_prime(n):
        return {n}
    for p in (2, 3, 5, 7, 11, 13):
        if n % p == 0:
            while n % p == 0:
                n //= p
            return {p} | _prime_factors(n)
    rng = random.Random(n)
    while True:
        c = rng.randrange(1, n)
        x = y = rng.randrange(2, n)
        d = 1
        while d == 1:
            x = (x * x + c) % n
            y = (y * y + c) % n
            y = (y * y + c) % n
            d = math.gcd(abs(x - y), n)
        if d != n:
            return _prime_factors(d) | _prime_factors(n // d)


@lru_cache(maxsize=64)
def _maximal(width: int, taps: tuple[int, ...]) -> bool:
    """The step map has order exactly ``2**width - 1``: one cycle through every non-zero state."""
    spec_map = tuple(
        ((1 << (j + 1)) & ((1 << width) - 1))
        | (1 if (j + 1) in taps else 0)
        for j in range(width))
    n = (1 << width) - 1
    identity = tuple(1 << j for j in range(width))
    if power_map(spec_map, n) != identity:
        return False
    return all(power_map(spec_map, n // p) != identity for p in _prime_factors(n))


@dataclass(frozen=True)
class LfsrSpec:
    """A maximal-length Fibonacci LFSR drawing ``draw_bits`` bits per draw.

    Parameters
    ----------
    width : int
        State width in bits (4 to 64).
    taps : tuple of int
        Feedback taps in XAPP052 numbering (1..width); ``width`` must be one of them.
    draw_bits : int
        Bits per draw, and steps the state advances per draw.
    """

    width: int = 32
    taps: tuple[int, ...] = (32, 22, 2, 1)
    draw_bits: int = 16

    def __post_init__(self):
        if not isinstance(self.width, int) or not 4 <= self.width <= 64:
            raise ConfigError(f"lfsr.width must be an integer from 4 to 64, not {self.width!r}")
        taps = tuple(self.taps)
        object.__setattr__(self, "taps", taps)
        if (not taps or any(not isinstance(t, int) or not 1 <= t <= self.width for t in taps)
                or len(set(taps)) != len(taps) or self.width not in taps):
            raise ConfigError(
                f"lfsr.taps must be distinct integers from 1 to {self.width} including "
                f"{self.width}, not {taps!r}")
        if not _maximal(self.width, taps):
            raise ConfigError(
                f"lfsr.taps {taps!r} are not maximal-length for width {self.width}: the "
                f"generator would not visit every non-zero state (see XAPP052 for tap sets)")
        if not isinstance(self.draw_bits, int) or not 1 <= self.draw_bits <= self.width:
            raise ConfigError(
                f"lfsr.draw_bits must be an integer from 1 to {self.width}, not {self.draw_bits!r}")

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def step(self, state: int) -> int:
        """One single-bit step."""
        fb = 0
        for t in self.taps:
            fb ^= (state >> (t - 1)) & 1
        return ((state << 1) | fb) & self.mask

    @cached_property
    def step_map(self) -> tuple[int, ...]:
        """The single-step map as column images."""
        return tuple(self.step(1 << j) for j in range(self.width))

    @cached_property
    def leap_map(self) -> tuple[int, ...]:
        """The map of one draw: ``draw_bits`` steps at once."""
        return power_map(self.step_map, self.draw_bits)

    def draw(self, state: int) -> tuple[int, int]:
        """One draw: returns ``(word, next_state)``."""
        return state >> (self.width - self.draw_bits), apply_map(self.leap_map, state)

    def leap(self, state: int, draws: int) -> int:
        """The state after ``draws`` draws."""
        return apply_map(power_map(self.leap_map, draws), state)

    @property
    def period(self) -> int:
        """The period of a maximal-length generator, in single steps."""
        return (1 << self.width) - 1

    def lane_seeds(self, seed: int, lanes: int) -> tuple[int, ...]:
        """Default seeds: one base state from ``seed``, the lanes spaced evenly around the cycle.

        Lane ``i`` starts ``i * (period // lanes)`` steps after the base state, so no two lanes
        can produce overlapping stretches of the sequence before ``period // lanes`` steps.
        """
        # splitmix64 of the seed gives a well-mixed non-zero base state.
        z = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
        base = (z & self.mask) or 1
        spacing = power_map(self.step_map, self.period // lanes)
        seeds = [base]
        for _ in range(lanes - 1):
            seeds.append(apply_map(spacing, seeds[-1]))
        return tuple(seeds)
