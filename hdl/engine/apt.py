"""APT mode on chip: the error width of every layer, grown when its QE keeps too little."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ErrorWidths"]


class ErrorWidths(wiring.Component):
    """The error widths ``kE_l`` of APT mode (README, "APT mode"; the golden twin is
    :class:`~intrain.golden.apt.AptState`).

    During a QE pass, ``x`` (the wide tensor, lanes of ``x_mask`` counted) adds to
    ``S = sum |x|`` and ``e`` (the quantized error as written, lanes of ``e_mask``) to
    ``S^ = sum |e|``; ``shift`` is QE's shift ``k - (kE - 1)``, sampled with ``x_valid``. With the
    pass's last ``e`` comes ``end`` and the ``layer`` (0-based) whose error it was: two cycles
    later both sums are taken to common units (``S << -shift`` or ``S^ << shift``) and, unless
    ``|S - S^| * den <= num * S``, ``widths[layer]`` grows by ``step`` up to ``maximum``; the sums
    restart. Every layer's error is quantized once per step, before its own decision, so a width
    that grows applies from the next step, as in the golden model. ``widths`` starts at
    ``start`` after reset.

    Parameters
    ----------
    start : list of int
        The starting width of every layer.
    step, maximum : int
        ``apt_step`` and ``apt_max``.
    threshold : tuple of int
        ``(num, den)``, ``apt_threshold``.
    lanes, x_width, e_width : int
        Elements per cycle and the widths of ``x`` and ``e``.
    count : int
        The most elements of one pass (sizes the sums).
    shifts : tuple of int
        ``(lowest, highest)`` value of ``shift``.
    """

    def __init__(self, start, step, maximum, threshold, *, lanes, x_width, e_width, count,
                 shifts):
        self._start, self._step, self._max = list(start), step, maximum
        self._num, self._den = threshold
        self._lanes, self._count = lanes, count
        self._x_width, self._e_width = x_width, e_width
        self._shifts = shifts
        n = len(self._start)
        super().__init__({
            "x_valid": In(1),
            "x": In(data.ArrayLayout(signed(x_width), lanes)),
            "x_mask": In(lanes),
            "shift": In(signed(max(abs(shifts[0]), abs(shifts[1])).bit_length() + 1)),
            "e_valid": In(1),
            "e": In(data.ArrayLayout(signed(e_width), lanes)),
            "e_mask": In(lanes),
            "end": In(1),
            "layer": In(range(max(n, 2))),
            "widths": Out(data.ArrayLayout(unsigned(maximum.bit_length()), n),
                          init=self._start),
        })

    def _sum(self, m, values, mask, name):
        """``sum |values[k]|`` of the lanes in ``mask`` (combinational)."""
        total = 0
        for k, v in enumerate(values):
            mag = Signal(unsigned(len(v)), name=f"{name}_abs_{k}")
            m.d.comb += mag.eq(Mux(mask[k], Mux(v < 0, -v, v), 0))
            total = total + mag
        return total

    def elaborate(self, platform):
        m = Module()
        _lanes, count = self._lanes, self._count
        s_bits = max(self._x_width, self._e_width) + count.bit_length() + 1
        s = Signal(unsigned(s_bits), name="s")
        s_hat = Signal(unsigned(s_bits), name="s_hat")
        shift = Signal.like(self.shift, name="shift_pass")
        with m.If(self.x_valid):
            m.d.sync += [s.eq(s + self._sum(m, self.x, self.x_mask, "x")), shift.eq(self.shift)]
        with m.If(self.e_valid):
            m.d.sync += s_hat.eq(s_hat + self._sum(m, self.e, self.e_mask, "e"))

        # Cycle 1 after ``end``: both sums in the finer unit (registered).
        low, high = self._shifts
        left = Signal(range(max(-low, 0) + 1), name="left")    # S << -shift
        right = Signal(range(max(high, 0) + 1), name="right")  # S^ << shift
        m.d.comb += [left.eq(Mux(shift < 0, -shift, 0)), right.eq(Mux(shift > 0, shift, 0))]
        wide = s_bits + max(-low, high, 0)
        s1 = Signal(unsigned(wide), name="s_common")
        s_hat1 = Signal(unsigned(wide), name="s_hat_common")
        pending = Signal(2, name="pending")
        layer = Signal.like(self.layer, name="decide_layer")
        m.d.sync += pending.eq(Mux(self.end, 1, Mux(pending == 1, 2, 0)))
        with m.If(self.end):
            m.d.sync += layer.eq(self.layer)
        with m.If(pending == 1):
            m.d.sync += [s1.eq(s << left), s_hat1.eq(s_hat << right), s.eq(0), s_hat.eq(0)]

        # Cycle 2: the test, and the width of the next step.
        diff = Signal(unsigned(wide), name="diff")
        holds = Signal(name="holds")
        m.d.comb += [
            diff.eq(Mux(s1 > s_hat1, s1 - s_hat1, s_hat1 - s1)),
            holds.eq(diff * self._den <= s1 * self._num),
        ]
        with m.If((pending == 2) & ~holds):
            for j in range(len(self._start)):
                with m.If(layer == j):
                    w = self.widths[j]
                    m.d.sync += w.eq(Mux(w + self._step > self._max, self._max, w + self._step))
        return m
