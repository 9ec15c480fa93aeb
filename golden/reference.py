"""WAGE in float64, as the authors' reference code computes it: the yardstick of the integer model.

This module restates the quantizers of WAGE (``source/Quantize.py`` of boluoweifenda/WAGE) in
real units and float64, independently of :mod:`intrain.golden.arith`. It exists only to judge the
integer model in tests: every integer result of ``arith`` must equal the result here, element for
element, once converted between integer units and real values. All conversions are multiplications
by powers of two, exact in float64 while the magnitudes stay below ``2 ** 53``.

The reference code's definitions, with ``S(bits) = 2 ** (bits - 1)``:

- ``Shift(x) = 2 ** round(log2 x)``;
- ``C(x, bits)``: clip to ``+-(1 - 1 / S(bits))`` (to ``+-1`` when ``bits > 15``);
- ``Q(x, bits) = round(x * S(bits)) / S(bits)`` (unchanged when ``bits > 15``), with ``round``
  half to even (``tf.round``; :func:`numpy.rint` does the same);
- ``W(x) = Q(C(x, bitsW), bitsW)``; the layer scale ``alpha`` divides it (here: :func:`alpha`);
- ``QA(x) = Q(C(x, bitsA), bitsA)``, applied after ReLU;
- ``QE(x) = Q(C(x / Shift(max|x|), bitsE), bitsE)``;
- ``QG(x)``: ``x / Shift(max|x|)``, times the learning rate, stochastic rounding
  ``sign * (floor|.| + [frac > u])``, divided by ``S(bitsG)``.

Where the reference code is undefined or inexact, this module follows ``shared/SPEC.md``:

- an all-zero tensor has no ``Shift`` (``log2 0``); QE and QG return zeros for it;
- ``round(log2 x)`` is computed exactly (:func:`round_log2`), not through a floating-point
  logarithm, which misrounds near the half-points ``2 ** (k + 1/2)`` for large ``x``;
- the stochastic rounding can take the integer draws of the hardware: the fraction truncated to
  ``draw_bits`` bits is compared with an integer ``u`` in ``[0, 2 ** draw_bits)``.

Integer units: a ``k``-bit quantity ``n`` has the real value ``n * 2 ** (1 - k)``
(:func:`to_real`, :func:`to_int`); a forward accumulator ``acc`` has the real value
``acc * 2 ** -out_shift`` (:func:`acc_to_real`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "S", "round_log2", "Shift", "Shift_float", "C", "clip_mask", "Q", "W", "relu", "QA", "QE",
    "QG", "update", "L_min", "L_init", "alpha", "init_limit", "to_real", "to_int", "acc_to_real",
    "scale_to_int", "conv2d", "conv2d_transposed", "conv2d_weight_gradient", "max_pool",
    "unpool",
]


# ------------------------------------------------------------------------------------------------
# Scalars of the reference code
# ------------------------------------------------------------------------------------------------
def S(bits: int) -> float:
    """The scale of a ``bits``-wide quantity.

    Parameters
    ----------
    bits : int
        Width in bits.

    Returns
    -------
    float
        ``2 ** (bits - 1)``.
    """
    return 2.0 ** (bits - 1)


def round_log2(x) -> int:
    """``round(log2 x)`` of one positive real, exactly.

    ``log2 x`` is never exactly half an integer for a rational ``x`` (``2 ** (k + 1/2)`` is
    irrational), so there is no tie: the result is the ``k`` with
    ``2 ** (2k - 1) <= x ** 2 < 2 ** (2k + 1)``, decided here in exact rational arithmetic.

    Parameters
    ----------
    x : float or int
        A positive finite number.

    Returns
    -------
    int
        ``round(log2 x)``.

    Raises
    ------
    ValueError
        If ``x`` is not positive and finite.
    """
    if isinstance(x, (int, np.integer)):
        num, den = int(x), 1
    else:
        xf = float(x)
        if not math.isfinite(xf):
            raise ValueError(f"round_log2 needs a finite number, not {x!r}")
        num, den = xf.as_integer_ratio()
    if num <= 0:
        raise ValueError(f"round_log2 needs a positive number, not {x!r}")
    # p = floor(log2(num / den)), exactly.
    p = num.bit_length() - den.bit_length()
    if (num << max(0, -p)) < (den << max(0, p)):
        p -= 1
    # x >= 2 ** (p + 1/2)  <=>  num ** 2 >= den ** 2 * 2 ** (2p + 1).
    e = 2 * p + 1
    lhs, rhs = num * num, den * den
    if e >= 0:
        rhs <<= e
    else:
        lhs <<= -e
    return p + 1 if lhs >= rhs else p


def Shift(x) -> float:
    """``2 ** round(log2 x)``, with the exact :func:`round_log2`.

    Parameters
    ----------
    x : float
        A positive finite number.

    Returns
    -------
    float
        The power of two nearest to ``x`` on a logarithmic scale.
    """
    return math.ldexp(1.0, round_log2(x))


def Shift_float(x) -> float:
    """``2 ** rint(log2 x)`` through the floating-point logarithm, as the reference code writes it.

    Equal to :func:`Shift` except where ``log2`` misrounds next to a half-point
    ``2 ** (k + 1/2)``; kept to show that difference.

    Parameters
    ----------
    x : float
        A positive finite number.

    Returns
    -------
    float
        ``2 ** rint(log2 x)``.
    """
    return float(2.0 ** np.rint(np.log2(np.float64(x))))


# ------------------------------------------------------------------------------------------------
# Clip and quantize
# ------------------------------------------------------------------------------------------------
def _limit(bits: int) -> float:
    delta = 0.0 if bits > 15 or bits == 1 else 1.0 / S(bits)
    return 1.0 - delta


def C(x, bits: int) -> np.ndarray:
    """Saturate to ``[-(1 - 1/S(bits)), 1 - 1/S(bits)]`` (``[-1, 1]`` when ``bits > 15``).

    Parameters
    ----------
    x : array_like
        Real values.
    bits : int
        Width in bits.

    Returns
    -------
    numpy.ndarray
        The clipped values (float64).
    """
    lim = _limit(bits)
    return np.clip(np.asarray(x, dtype=np.float64), -lim, lim)


def clip_mask(x, bits: int) -> np.ndarray:
    """The straight-through gradient mask of :func:`C`: ``-lim <= x <= lim`` (inclusive, as the
    gradient of ``tf.clip_by_value``).

    Parameters
    ----------
    x : array_like
        The input of the clip.
    bits : int
        Width in bits.

    Returns
    -------
    numpy.ndarray of bool
        True where the gradient passes.
    """
    lim = _limit(bits)
    x = np.asarray(x, dtype=np.float64)
    return (x >= -lim) & (x <= lim)


def Q(x, bits: int) -> np.ndarray:
    """``round(x * S(bits)) / S(bits)``, half to even; ``sign(x)`` for ``bits == 1``; unchanged
    for ``bits > 15``.

    Parameters
    ----------
    x : array_like
        Real values.
    bits : int
        Width in bits.

    Returns
    -------
    numpy.ndarray
        The values on the ``bits``-wide grid (float64).
    """
    x = np.asarray(x, dtype=np.float64)
    if bits > 15:
        return x.copy()
    if bits == 1:
        return np.sign(x)
    scale = S(bits)
    return np.rint(x * scale) / scale


def W(x, bits_w: int) -> np.ndarray:
    """The forward/backward weights ``Q(C(x, bitsW), bitsW)`` (before the division by alpha).

    Parameters
    ----------
    x : array_like
        Stored weights, real values.
    bits_w : int
        Weight width kW.

    Returns
    -------
    numpy.ndarray
        Quantized weights, real values.
    """
    return Q(C(x, bits_w), bits_w)


def relu(x) -> np.ndarray:
    """``max(x, 0)``.

    Parameters
    ----------
    x : array_like
        Real values.

    Returns
    -------
    numpy.ndarray
        The rectified values (float64).
    """
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def QA(x, bits_a: int) -> np.ndarray:
    """Activation quantizer ``Q(C(x, bitsA), bitsA)``; the caller applies ReLU first.

    Parameters
    ----------
    x : array_like
        Real values.
    bits_a : int
        Activation width kA.

    Returns
    -------
    numpy.ndarray
        Quantized activations, real values.
    """
    return Q(C(x, bits_a), bits_a)


def QE(x, bits_e: int) -> np.ndarray:
    """Error quantizer ``Q(C(x / Shift(max|x|), bitsE), bitsE)`` over the whole tensor.

    Parameters
    ----------
    x : array_like
        Errors, in any units (the result does not depend on a power-of-two scale of ``x``).
    bits_e : int
        Error width kE.

    Returns
    -------
    numpy.ndarray
        Quantized errors, real values; zeros when ``x`` is all zero.
    """
    x = np.asarray(x, dtype=np.float64)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m == 0.0:
        return np.zeros_like(x)
    return Q(C(x / Shift(m), bits_e), bits_e)


def QG(x, lam: int, bits_g: int, draws=None, uniforms=None, draw_bits: int = 16) -> np.ndarray:
    """Gradient quantizer: scale by ``1 / Shift(max|x|)``, multiply by the learning rate
    ``2 ** lam``, round stochastically, divide by ``S(bitsG)``.

    The stochastic rounding is ``sign(n) * (floor|n| + [frac|n| > u])``. With ``uniforms`` (floats
    in ``[0, 1)``) the compare is in real numbers as in the reference code; with ``draws``
    (integers in ``[0, 2 ** draw_bits)``) it is ``floor(frac * 2 ** draw_bits) > u``, as the
    hardware compares its random words. Exactly one of the two must be given. (The reference code
    also passes ``LR * x`` through ``Q(., bitsR)`` with ``bitsR = 32``, which leaves it unchanged;
    its compare ``0.5 * (sign(frac - u) + 1)`` differs from ``[frac > u]`` only where
    ``frac == u``, which has probability zero with float uniforms.)

    Parameters
    ----------
    x : array_like
        Gradients, in any units.
    lam : int
        ``log2`` of the learning rate.
    bits_g : int
        Gradient width kG: the update is in units of ``1 / S(bitsG)``.
    draws : array_like of int, optional
        One integer draw per element (broadcast to ``x``).
    uniforms : array_like of float, optional
        One uniform draw in ``[0, 1)`` per element (broadcast to ``x``).
    draw_bits : int
        Width of the integer draws.

    Returns
    -------
    numpy.ndarray
        The weight update ``dW`` in real units; zeros when ``x`` is all zero.
    """
    if (draws is None) == (uniforms is None):
        raise ValueError("QG needs exactly one of draws (integers) or uniforms (floats)")
    x = np.asarray(x, dtype=np.float64)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m == 0.0:
        return np.zeros_like(x)
    norm = math.ldexp(1.0, int(lam)) * (x / Shift(m))
    sign = np.sign(norm)
    mag = np.abs(norm)
    whole = np.floor(mag)
    frac = mag - whole
    if draws is not None:
        up = np.floor(np.ldexp(frac, draw_bits)) > np.asarray(draws, dtype=np.float64)
    else:
        up = frac > np.asarray(uniforms, dtype=np.float64)
    return sign * (whole + up) / S(bits_g)


def update(w, dw, bits_clip: int) -> np.ndarray:
    """The weight update ``C(w - dw, bits_clip)``.

    Parameters
    ----------
    w, dw : array_like
        Stored weights and their update, real values.
    bits_clip : int
        ``bitsW`` for the reference code's clip ``+-(1 - sigma(kW))``, ``bitsG`` for the paper's.

    Returns
    -------
    numpy.ndarray
        The new stored weights, real values.
    """
    return C(np.asarray(w, dtype=np.float64) - np.asarray(dw, dtype=np.float64), bits_clip)


# ------------------------------------------------------------------------------------------------
# Initialisation and the layer scale
# ------------------------------------------------------------------------------------------------
def L_min(bits_w: int) -> float:
    """``1.5 * sigma(kW)`` with ``sigma(k) = 2 ** (1 - k)``.

    Parameters
    ----------
    bits_w : int
        Weight width kW.

    Returns
    -------
    float
        The smallest initialisation limit.
    """
    return 1.5 * 2.0 ** (1 - bits_w)


def L_init(n_in: int) -> float:
    """``sqrt(3 / n_in)`` (the reference code; the paper writes ``sqrt(6 / n_in)``).

    Parameters
    ----------
    n_in : int
        Fan-in.

    Returns
    -------
    float
        The uniform initialisation limit.
    """
    return math.sqrt(3.0 / n_in)


def alpha(n_in: int, bits_w: int) -> float:
    """The layer scale ``max(Shift(L_min / L_init), 1)``.

    Parameters
    ----------
    n_in : int
        Fan-in.
    bits_w : int
        Weight width kW.

    Returns
    -------
    float
        A power of two, at least 1.
    """
    return max(Shift(L_min(bits_w) / L_init(n_in)), 1.0)


def init_limit(n_in: int, bits_w: int) -> float:
    """``max(L_min, L_init)``: the weights start uniform in ``[-limit, limit]``.

    Parameters
    ----------
    n_in : int
        Fan-in.
    bits_w : int
        Weight width kW.

    Returns
    -------
    float
        The initialisation limit.
    """
    return max(L_min(bits_w), L_init(n_in))


# ------------------------------------------------------------------------------------------------
# Integer units <-> real values
# ------------------------------------------------------------------------------------------------
def to_real(n, bits: int) -> np.ndarray:
    """The real value ``n * 2 ** (1 - bits)`` of a ``bits``-wide integer (exact below ``2**53``).

    Parameters
    ----------
    n : array_like of int
        Integer codes, e.g. an activation in units of ``2 ** (1 - kA)``.
    bits : int
        Width in bits.

    Returns
    -------
    numpy.ndarray
        Real values (float64).
    """
    return np.ldexp(np.asarray(n, dtype=np.float64), 1 - bits)


def scale_to_int(x, exponent: int) -> np.ndarray:
    """``x * 2 ** exponent`` as int64, checked to be an exact integer.

    Parameters
    ----------
    x : array_like
        Real values.
    exponent : int
        The power of two to multiply by.

    Returns
    -------
    numpy.ndarray of int64
        The integers.

    Raises
    ------
    ValueError
        If a scaled value is not an integer or does not fit in int64 exactly.
    """
    y = np.ldexp(np.asarray(x, dtype=np.float64), exponent)
    if not np.all(np.isfinite(y)) or np.any(np.abs(y) > 2.0**53) or np.any(y != np.rint(y)):
        raise ValueError("value is not an exact integer in these units")
    return y.astype(np.int64)


def to_int(x, bits: int) -> np.ndarray:
    """The ``bits``-wide integer code ``x * 2 ** (bits - 1)`` of a real value on the grid.

    Parameters
    ----------
    x : array_like
        Real values, multiples of ``2 ** (1 - bits)``.
    bits : int
        Width in bits.

    Returns
    -------
    numpy.ndarray of int64
        Integer codes.

    Raises
    ------
    ValueError
        If a value is not on the grid.
    """
    return scale_to_int(x, bits - 1)


def acc_to_real(acc, out_shift: int) -> np.ndarray:
    """The real value ``acc * 2 ** -out_shift`` of a forward accumulator.

    Parameters
    ----------
    acc : array_like of int
        Accumulators.
    out_shift : int
        The layer's ``out_shift`` (``LayerPlan.out_shift``).

    Returns
    -------
    numpy.ndarray
        Real values (float64).
    """
    return np.ldexp(np.asarray(acc, dtype=np.float64), -out_shift)


# ------------------------------------------------------------------------------------------------
# Convolution and max-pool (SPEC.md section 4b), by direct loops over every element
# ------------------------------------------------------------------------------------------------
def _input_at(a, b, c, y, x) -> float:
    """``a[b, c, y, x]``, or 0 outside the image (the zero padding)."""
    return float(a[b, c, y, x]) if 0 <= y < a.shape[2] and 0 <= x < a.shape[3] else 0.0


def conv2d(a, w) -> np.ndarray:
    """``out[b,o,y,x] = sum_{c,i,j} w[o,c,i,j] * a[b,c,y+i-(k-1)/2, x+j-(k-1)/2]``: stride 1,
    odd square kernel, zero padding ``(k - 1) / 2`` ("SAME"), as TF ``conv2d``.

    Parameters
    ----------
    a : array_like
        Inputs ``(N, C, H, W)``.
    w : array_like
        Weights ``(O, C, k, k)``.

    Returns
    -------
    numpy.ndarray
        ``(N, O, H, W)`` (float64).
    """
    a, w = np.asarray(a, dtype=np.float64), np.asarray(w, dtype=np.float64)
    n, c_in, h, wd = a.shape
    c_out, _, k, _ = w.shape
    p = (k - 1) // 2
    out = np.zeros((n, c_out, h, wd))
    for b in range(n):
        for o in range(c_out):
            for y in range(h):
                for x in range(wd):
                    out[b, o, y, x] = sum(
                        w[o, c, i, j] * _input_at(a, b, c, y + i - p, x + j - p)
                        for c in range(c_in) for i in range(k) for j in range(k))
    return out


def conv2d_transposed(dz, w) -> np.ndarray:
    """The error at a convolution's input: ``r[b,c,y',x'] = sum dz[b,o,y,x] * w[o,c,i,j]`` over
    every ``(o, y, x, i, j)`` with ``y' = y + i - (k-1)/2``, ``x' = x + j - (k-1)/2`` inside the
    image (``d out / d a`` of :func:`conv2d`, applied to ``dz``).

    Parameters
    ----------
    dz : array_like
        Errors at the output ``(N, O, H, W)``.
    w : array_like
        Weights ``(O, C, k, k)``.

    Returns
    -------
    numpy.ndarray
        ``(N, C, H, W)`` (float64).
    """
    dz, w = np.asarray(dz, dtype=np.float64), np.asarray(w, dtype=np.float64)
    n, c_out, h, wd = dz.shape
    _, c_in, k, _ = w.shape
    p = (k - 1) // 2
    r = np.zeros((n, c_in, h, wd))
    for b in range(n):
        for o in range(c_out):
            for y in range(h):
                for x in range(wd):
                    for c in range(c_in):
                        for i in range(k):
                            for j in range(k):
                                yy, xx = y + i - p, x + j - p
                                if 0 <= yy < h and 0 <= xx < wd:
                                    r[b, c, yy, xx] += dz[b, o, y, x] * w[o, c, i, j]
    return r


def conv2d_weight_gradient(dz, a, k: int) -> np.ndarray:
    """``g[o,c,i,j] = sum_{b,y,x} dz[b,o,y,x] * a_pad[b,c,y+i,x+j]`` (``d out / d w`` of
    :func:`conv2d`, applied to ``dz``).

    Parameters
    ----------
    dz : array_like
        Errors at the output ``(N, O, H, W)``.
    a : array_like
        Inputs ``(N, C, H, W)``.
    k : int
        Kernel size.

    Returns
    -------
    numpy.ndarray
        ``(O, C, k, k)`` (float64).
    """
    dz, a = np.asarray(dz, dtype=np.float64), np.asarray(a, dtype=np.float64)
    n, c_out, h, wd = dz.shape
    c_in = a.shape[1]
    p = (k - 1) // 2
    g = np.zeros((c_out, c_in, k, k))
    for o in range(c_out):
        for c in range(c_in):
            for i in range(k):
                for j in range(k):
                    g[o, c, i, j] = sum(dz[b, o, y, x] * _input_at(a, b, c, y + i - p, x + j - p)
                                        for b in range(n) for y in range(h) for x in range(wd))
    return g


def max_pool(x, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``p x p`` max-pool, stride ``p``: each window's maximum and the ``(row, column)`` of its
    first maximum in raster order (a later equal value never replaces it).

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)``, ``p`` dividing ``H`` and ``W``.
    p : int
        Window size.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The maxima ``(N, C, H/p, W/p)`` (float64) and the chosen positions
        ``(N, C, H/p, W/p, 2)`` (int, within the window).
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    out = np.zeros((n, c, h // p, w // p))
    where = np.zeros((n, c, h // p, w // p, 2), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for y in range(h // p):
                for xx in range(w // p):
                    best, at = -math.inf, (0, 0)
                    for i in range(p):
                        for j in range(p):
                            v = x[b, ch, y * p + i, xx * p + j]
                            if v > best:
                                best, at = v, (i, j)
                    out[b, ch, y, xx], where[b, ch, y, xx] = best, at
    return out, where


def unpool(e, where, p: int) -> np.ndarray:
    """The gradient of :func:`max_pool`: each window's error at its chosen position, 0 elsewhere.

    Parameters
    ----------
    e : array_like
        Errors ``(N, C, H/p, W/p)``.
    where : array_like
        The positions :func:`max_pool` chose ``(N, C, H/p, W/p, 2)``.
    p : int
        Window size.

    Returns
    -------
    numpy.ndarray
        ``(N, C, H, W)`` (float64).
    """
    e = np.asarray(e, dtype=np.float64)
    n, c, hp, wp = e.shape
    dz = np.zeros((n, c, hp * p, wp * p))
    for b in range(n):
        for ch in range(c):
            for y in range(hp):
                for x in range(wp):
                    i, j = where[b, ch, y, x]
                    dz[b, ch, y * p + i, x * p + j] = e[b, ch, y, x]
    return dz
