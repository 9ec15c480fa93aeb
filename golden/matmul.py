"""Tile matrix products as the systolic array computes them: the software twin of
``intrain.hdl.SystolicArray``.

:func:`tile_matmul` is the arithmetic (``a @ b`` in exact integers, wrapped to the accumulator
width); :func:`systolic_schedule` is the timing: the cycle in which the array accepts every beat
and presents every output row when its input is always valid and its output always ready.
"""

from __future__ import annotations

import numpy as np

__all__ = ["wrap", "tile_matmul", "systolic_latency", "systolic_schedule"]

PIPELINE_CYCLES = 2
"""Cycles from a processing element's operands to its sum in the output register: one for the
registered product, one for the accumulator."""


def wrap(x, width: int):
    """``x`` modulo ``2 ** width``, as a two's complement value in
    ``[-2 ** (width - 1), 2 ** (width - 1) - 1]`` (what a ``signed(width)`` register holds)."""
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << (width - 1)
    return ((x + half) & ((half << 1) - 1)) - half


def tile_matmul(a, b, acc_width: int | None = None):
    """``OUT[r][c] = sum_k A[r][k] * B[k][c]``, exact in int64, wrapped to ``acc_width`` bits when
    given.

    The array's accumulators are ``signed(acc_width)`` registers that wrap; a caller that sizes
    ``acc_width`` from :class:`~intrain.config.Config` (``acc_bits``) never sees a wrap, and then
    the result is plain ``a @ b``.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply a {a.shape} tile by a {b.shape} tile")
    out = a @ b
    return out if acc_width is None else wrap(out, acc_width)


def systolic_latency(cols: int) -> int:
    """Cycles from accepting the beat with ``last`` to presenting row 0 of its tile, without
    stalls: ``PIPELINE_CYCLES + cols - 1`` (the sum of PE ``(0, cols - 1)`` completes last in
    row 0)."""
    return PIPELINE_CYCLES + cols - 1


def systolic_schedule(ks, rows: int, cols: int):
    """Cycle of every input beat and every output row for tiles of reduction lengths ``ks`` fed
    back to back, the input always valid and the output always ready (cycle 0 is the first).

    The array accepts one beat per cycle, except that the beat with ``last`` of tile ``n`` waits
    until (1) at least ``cols`` cycles have passed since the ``last`` beat of tile ``n - 1``,
    so that its first sums reach a row only after the previous tile has completed that row,
    and (2) tile ``n - 2`` has finished draining (its final row is presented in that cycle or
    earlier): two tiles at most lie between the input and the output, one in the accumulators and
    one in the output registers. Row ``r`` of tile ``n`` comes out ``latency + r`` cycles after
    its ``last`` beat, or one cycle after the previous row, whichever is later.

    Returns
    -------
    accept : list of int
        The cycle of each beat, in input order.
    out : list of list of int
        ``out[n][r]``: the cycle in which row ``r`` of tile ``n`` is presented.
    """
    latency = systolic_latency(cols)
    accept, out, lasts = [], [], []
    cycle = 0
    prev_out = -1
    for n, k in enumerate(ks):
        if k < 1:
            raise ValueError(f"every tile needs at least one beat, not {k}")
        for j in range(k):
            if j == k - 1:
                if n >= 1:
                    cycle = max(cycle, lasts[-1] + cols)
                if n >= 2:
                    cycle = max(cycle, out[n - 2][-1])
                lasts.append(cycle)
            accept.append(cycle)
            cycle += 1
        first = max(lasts[-1] + latency, prev_out + 1)
        out.append([first + r for r in range(rows)])
        prev_out = out[-1][-1]
    return accept, out
