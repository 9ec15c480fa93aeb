"""Integer arithmetic of SPEC.md, written once: the software twins of the hdl/ blocks.

Every function takes and returns NumPy integer arrays (int64) and never uses floating point for a
result. Shifts are powers of two; a positive shift divides (round half to even), a negative or
zero shift multiplies (exact).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "round_shift", "saturate", "rl2", "max_abs", "qa", "qe", "qg_scale", "stochastic_round",
    "qg", "forward_weights", "update_weights",
]


def round_shift(x, s: int):
    """``round(x / 2 ** s)`` with ties to even for ``s > 0``; ``x * 2 ** -s`` for ``s <= 0``.

    For ``s > 0`` this is the one-adder form ``(x + 2 ** (s - 1) - 1 + bit_s(x)) >> s`` with an
    arithmetic (flooring) shift, as the hardware computes it.
    """
    x = np.asarray(x, dtype=np.int64)
    s = int(s)
    if s <= 0:
        return x << -s
    return (x + ((1 << (s - 1)) - 1) + ((x >> s) & 1)) >> s


def saturate(x, limit: int):
    """Clip to ``[-limit, limit]`` (symmetric: the most negative code is never produced)."""
    return np.clip(np.asarray(x, dtype=np.int64), -limit, limit)


def rl2(m: int) -> int:
    """``round(log2 m)`` of an integer ``m > 0``, exactly.

    ``p = floor(log2 m)`` (the leading one); the result is ``p + 1`` if ``m * m >= 2 ** (2p + 1)``,
    that is if ``m >= ceil(2 ** (p + 0.5))``, else ``p``.
    """
    m = int(m)
    if m <= 0:
        raise ValueError(f"RL2 needs a positive integer, not {m!r}")
    p = m.bit_length() - 1
    return p + 1 if m * m >= 1 << (2 * p + 1) else p


def max_abs(x) -> int:
    """``max |x|`` over a whole tensor (0 for an empty one)."""
    x = np.asarray(x, dtype=np.int64)
    return int(np.abs(x).max()) if x.size else 0


def qa(acc, shift: int, a_max: int):
    """QA after ReLU: ``min(a_max, round(max(acc, 0) / 2 ** shift))``.

    Returns ``(A, clipmask)``; ``clipmask`` is the straight-through mask of the clip,
    ``max(acc, 0) <= a_max * 2 ** shift`` (inclusive), computed exactly for any shift sign.
    """
    acc = np.asarray(acc, dtype=np.int64)
    h = np.maximum(acc, 0)
    a = np.minimum(round_shift(h, shift), a_max)
    if shift >= 0:
        clipmask = h <= (a_max << shift)
    else:
        clipmask = (h << -shift) <= a_max
    return a, clipmask


def qe(x, e_max: int):
    """QE over a whole tensor: 0 if all of ``x`` is 0; else with ``k = RL2(max|x|)``,
    ``clip(round(x * 2 ** (kE - 1 - k)))`` where ``e_max = 2 ** (kE - 1) - 1``."""
    x = np.asarray(x, dtype=np.int64)
    m = max_abs(x)
    if m == 0:
        return np.zeros_like(x)
    k = rl2(m)
    ke1 = (e_max + 1).bit_length() - 1  # kE - 1
    return saturate(round_shift(x, k - ke1), e_max)


def qg_scale(g, lam: int) -> int | None:
    """The shift of QG: ``g = G * 2 ** (lam - k)`` with ``k = RL2(max|G|)``; returns ``k - lam``
    (the right-shift amount, may be negative), or None when G is all zero."""
    m = max_abs(g)
    if m == 0:
        return None
    return rl2(m) - int(lam)


def stochastic_round(g, shift: int, draws, draw_bits: int = 16):
    """``sign(g) * (floor|g / 2 ** shift| + [frac > u])`` where ``frac`` is the fraction of
    ``|g| / 2 ** shift`` truncated to ``draw_bits`` bits and ``u`` the draw of each element."""
    g = np.asarray(g, dtype=np.int64)
    mag = np.abs(g)
    if shift <= 0:
        q = mag << -shift
    else:
        q = mag >> shift
        rem = mag & ((1 << shift) - 1)
        frac = rem >> (shift - draw_bits) if shift >= draw_bits else rem << (draw_bits - shift)
        q = q + (frac > np.asarray(draws, dtype=np.int64))
    return np.where(g < 0, -q, q)


def qg(g, lam: int, draws, draw_bits: int = 16):
    """QG with learning rate ``2 ** lam``: the integer update ``dW`` (0 where G is all 0)."""
    shift = qg_scale(g, lam)
    if shift is None:
        return np.zeros(np.shape(g), dtype=np.int64)
    return stochastic_round(g, shift, draws, draw_bits)


def forward_weights(w, t_shift: int, t_max: int):
    """The forward/backward view of stored weights: ``clip(round(W / 2 ** t_shift), t_max)``.
    For ternary weights (kW = 2, kG = 8) this is ``sign(W)`` where ``|W| > 32`` else 0."""
    return saturate(round_shift(w, t_shift), t_max)


def update_weights(w, dw, w_max: int):
    """``clip(W - dW, -w_max, w_max)``."""
    return saturate(np.asarray(w, dtype=np.int64) - dw, w_max)
