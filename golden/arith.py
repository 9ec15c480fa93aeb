"""Integer arithmetic of SPEC.md, written once: the software twins of the hdl/ blocks.

Every function takes and returns NumPy integer arrays and never uses floating point. Results keep
the integer dtype of the input (int64 for Python integers and lists): the caller picks a dtype
wide enough for the values (the golden model sizes them from the configuration's accumulator
bounds; int32 runs much faster than int64 here). Shifts are powers of two; a positive shift
divides (round half to even), a negative or zero shift multiplies (exact).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "round_shift", "saturate", "rl2", "max_abs", "qa", "qe_scale", "qe", "qg_scale",
    "stochastic_round", "qg", "forward_weights", "update_weights",
]


def _int(x):
    """``x`` as an integer array, keeping an integer array's dtype."""
    if type(x) is np.ndarray and x.dtype.kind in "iu":
        return x
    x = np.asarray(x)
    if x.dtype.kind == "b":
        return x.astype(np.int64)
    if x.dtype.kind not in "iu":
        if x.size and not np.all(np.mod(x, 1) == 0):
            raise TypeError(f"integer arithmetic needs integers, not {x.dtype} values")
        return x.astype(np.int64)
    return x


def round_shift(x, s: int):
    """``round(x / 2 ** s)`` with ties to even for ``s > 0``; ``x * 2 ** -s`` for ``s <= 0``.

    For ``s > 0`` this is the one-adder form ``(x + 2 ** (s - 1) - 1 + bit_s(x)) >> s`` with an
    arithmetic (flooring) shift, as the hardware computes it.
    """
    x = _int(x)
    s = int(s)
    if s <= 0:
        return x << -s
    y = x >> s
    y &= 1
    y += x
    y += (1 << (s - 1)) - 1
    y >>= s
    return y


def saturate(x, limit: int):
    """Clip to ``[-limit, limit]`` (symmetric: the most negative code is never produced)."""
    x = _int(x)
    t = x.dtype.type
    return np.clip(x, t(-limit), t(limit))


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
    x = np.asarray(x)
    return max(int(x.max()), -int(x.min())) if x.size else 0


def qa(acc, shift: int, a_max: int):
    """QA after ReLU: ``min(a_max, round(max(acc, 0) / 2 ** shift))``.

    Returns ``(A, clipmask)``; ``clipmask`` is the straight-through mask of the clip,
    ``max(acc, 0) <= a_max * 2 ** shift`` (inclusive), computed exactly for any shift sign.
    """
    acc = _int(acc)
    if shift >= 0:
        # Clipping to a_max * 2 ** shift before the shift gives the same result (that bound
        # shifts to a_max exactly) and saves a pass over the tensor.
        limit = acc.dtype.type(min(a_max << shift, np.iinfo(acc.dtype).max))
        clipmask = acc <= limit  # max(acc, 0) <= limit, as limit >= 0
        return round_shift(np.clip(acc, acc.dtype.type(0), limit), shift), clipmask
    h = np.maximum(acc, 0)
    return np.minimum(round_shift(h, shift), a_max), (h << -shift) <= a_max


def qe_scale(x, e_max: int) -> int | None:
    """The shift of QE: ``k - (kE - 1)`` with ``k = RL2(max|x|)`` and ``e_max = 2 ** (kE - 1) - 1``
    (positive: QE shifts right), or None when ``x`` is all zero."""
    m = max_abs(x)
    if m == 0:
        return None
    return rl2(m) - ((e_max + 1).bit_length() - 1)


def qe(x, e_max: int):
    """QE over a whole tensor: 0 if all of ``x`` is 0; else with ``k = RL2(max|x|)``,
    ``clip(round(x * 2 ** (kE - 1 - k)))`` where ``e_max = 2 ** (kE - 1) - 1``."""
    x = _int(x)
    shift = qe_scale(x, e_max)
    if shift is None:
        return np.zeros_like(x)
    y = round_shift(x, shift)  # a new array: saturated in place
    t = y.dtype.type
    return np.clip(y, t(-e_max), t(e_max), out=y)


def qg_scale(g, lam: int) -> int | None:
    """The shift of QG: ``g = G * 2 ** (lam - k)`` with ``k = RL2(max|G|)``; returns ``k - lam``
    (the right-shift amount, may be negative), or None when G is all zero."""
    m = max_abs(g)
    if m == 0:
        return None
    return rl2(m) - int(lam)


def stochastic_round(g, shift: int, draws, draw_bits: int = 16):
    """``sign(g) * (floor|g / 2 ** shift| + [frac > u])`` where ``frac`` is the fraction of
    ``|g| / 2 ** shift`` truncated to ``draw_bits`` bits and ``u`` the draw of each element.

    Computed as ``(m + (2 ** draw_bits - 1 - u)) >> draw_bits`` with ``m = |g|`` aligned so that
    its ``draw_bits`` low bits are the truncated fraction: the carry out of the fraction is
    exactly ``[frac > u]``.
    """
    g = _int(g)
    mag = np.abs(g)
    if shift <= 0:
        q = mag << -shift
    else:
        d = int(draw_bits)
        m = mag >> (shift - d) if shift >= d else mag << (d - shift)
        m += (1 << d) - 1
        m -= _int(draws)
        q = m >> d
    q *= np.sign(g)
    return q


def qg(g, lam: int, draws, draw_bits: int = 16):
    """QG with learning rate ``2 ** lam``: the integer update ``dW`` (0 where G is all 0)."""
    shift = qg_scale(g, lam)
    if shift is None:
        return np.zeros_like(_int(g))
    return stochastic_round(g, shift, draws, draw_bits)


def forward_weights(w, t_shift: int, t_max: int, dtype=None):
    """The forward/backward view of stored weights: ``clip(round(W / 2 ** t_shift), t_max)``.
    For ternary weights (kW = 2, kG = 8) this is ``sign(W)`` where ``|W| > 32`` else 0.

    ``dtype`` chooses the result's type (the golden model asks for float32 to feed its exact
    products); by default the input's integer type.
    """
    w = _int(w)
    dtype = w.dtype if dtype is None else dtype
    if t_max == 1 and t_shift > 0:
        # round(W / 2**s) clipped to 1: |W| > 2**(s-1) (a tie rounds to the even 0).
        h = 1 << (t_shift - 1)
        return np.subtract(w > h, w < -h, dtype=dtype)
    return saturate(round_shift(w, t_shift), t_max).astype(dtype, copy=False)


def update_weights(w, dw, w_max: int):
    """``clip(W - dW, -w_max, w_max)``."""
    return saturate(_int(w) - _int(dw), w_max)
