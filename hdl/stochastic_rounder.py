"""Stochastic rounding of a right shift: the hardware twin of
``intrain.golden.arith.stochastic_round`` (the rounding step of QG)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._util import check_int as _check_int

__all__ = ["StochasticRounder"]



class StochasticRounder(wiring.Component):
    """``sign(g) * (floor(|g| / 2 ** s) + [frac > u])`` for a run-time shift ``s``.

    ``frac`` is the discarded fraction of ``|g| / 2 ** s`` as a ``draw_bits``-bit fixed-point
    number, truncated (``s > draw_bits``) or extended with zeros (``s < draw_bits``), and ``u`` is
    the random draw that comes with ``g``. For ``s <= 0`` the result is the exact ``g * 2 ** -s``
    (no fraction, never rounded up).

    All shifts are made right shifts of ``|g|`` extended by ``draw_bits + lead`` zero bits
    (``lead = max(0, -min_shift)``): one barrel shifter yields the integer part above bit
    ``draw_bits`` and ``frac`` below it. The sign is applied with one adder,
    ``(q XOR sign) + (up XOR sign)``, which is ``-(q + up)`` for a negative ``g``.

    The shift is read from the ``shift`` port: the value in the cycle an element is accepted
    applies to that element. A value outside ``[min_shift, max_shift]`` gives an unspecified
    result.

    Fully pipelined: one element per cycle. Latency: 3 cycles (stage 1 takes the magnitude,
    stage 2 shifts and compares the fraction with ``u``, stage 3 rounds and restores the sign).
    All stages advance when the output register is empty or read (``~o.valid | o.ready``).

    Parameters
    ----------
    g_width : int
        Width of the signed input ``g`` (at least 2).
    draw_bits : int
        Width of the draws ``u`` and of the compared fraction.
    max_shift : int
        The largest shift.
    min_shift : int
        The smallest shift (may be negative: a left shift).
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout({"g": signed(g_width),
    "u": unsigned(draw_bits)})))``
        The value to round and its draw.
    shift : ``In(range(min_shift, max_shift + 1))``
        The shift of the element being accepted.
    o : ``Out(stream.Signature(signed(out_width)))``
        The rounded value; ``out_width = g_width + max(0, -min_shift)`` holds every result.
    """

    #: Clock edges from accepting an element to presenting its result (magnitude; shift and
    #: compare; rounding and sign). The engine delays its side signals and the cycle model
    #: counts by this constant.
    LATENCY = 3

    def __init__(self, g_width, draw_bits, max_shift, min_shift=0, *, src_loc_at=0):
        self._g_width = _check_int("Input width", g_width, 2)
        self._draw_bits = _check_int("Draw width", draw_bits, 1)
        _check_int("Maximum shift", max_shift)
        _check_int("Minimum shift", min_shift)
        if min_shift > max_shift:
            raise ValueError(
                f"Minimum shift {min_shift!r} must not exceed maximum shift {max_shift!r}")
        if max_shift > 1 << 16 or min_shift < -(1 << 16):
            raise ValueError(
                f"Shifts must be from {-(1 << 16)} to {1 << 16}, not {min_shift}..{max_shift}")
        self._max_shift = max_shift
        self._min_shift = min_shift
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "g": signed(g_width), "u": unsigned(draw_bits)}))),
            "shift": In(range(min_shift, max_shift + 1)),
            "o": Out(stream.Signature(signed(self.out_width))),
        }, src_loc_at=src_loc_at + 1)

    @classmethod
    def from_config(cls, config) -> StochasticRounder:
        """The rounder of QG for a :class:`~intrain.config.Config`: gradients ``acc_bits`` wide,
        its draw width, and every shift ``RL2(max|G|) - lam`` of its learning-rate schedule
        (``0 <= RL2 <= acc_bits - 1``)."""
        lams = [lam for _, lam in config.lr_schedule]
        return cls(config.acc_bits, config.lfsr.draw_bits,
                   max_shift=config.acc_bits - 1 - min(lams), min_shift=-max(lams), src_loc_at=1)

    @staticmethod
    def config_out_width(config) -> int:
        """``out_width`` of :meth:`from_config`'s rounder, without building it."""
        return config.acc_bits + max(0, max(lam for _, lam in config.lr_schedule))

    @property
    def g_width(self) -> int:
        return self._g_width

    @property
    def draw_bits(self) -> int:
        return self._draw_bits

    @property
    def max_shift(self) -> int:
        return self._max_shift

    @property
    def min_shift(self) -> int:
        return self._min_shift

    @property
    def out_width(self) -> int:
        """Width of the signed result: ``g_width + max(0, -min_shift)``."""
        return self._g_width + max(0, -self._min_shift)

    @property
    def latency(self) -> int:
        """Clock edges from accepting an element to presenting its result: :attr:`LATENCY`."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        d = self._draw_bits
        lead = max(0, -self._min_shift)
        r_max = self._max_shift + lead

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # Stage 1: magnitude and sign; the shift becomes a right shift r = s + lead >= 0.
        g = self.i.payload.g
        s1_valid = Signal(name="s1_valid")
        s1_neg = Signal(name="s1_neg")
        s1_mag = Signal(unsigned(self._g_width), name="s1_mag")
        s1_u = Signal(unsigned(d), name="s1_u")
        s1_r = Signal(range(r_max + 1), name="s1_r")
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1_neg.eq(g < 0),
                s1_mag.eq(Mux(g < 0, -g, g)),
                s1_u.eq(self.i.payload.u),
                s1_r.eq(self.shift + lead),
            ]

        # Stage 2: one shifter gives the integer part and the fraction; compare with the draw.
        shifted = Signal(unsigned(self._g_width + d + lead), name="shifted")
        m.d.comb += shifted.eq(s1_mag.shift_left(d + lead) >> s1_r)
        s2_valid = Signal(name="s2_valid")
        s2_neg = Signal(name="s2_neg")
        s2_q = Signal(unsigned(self._g_width + lead), name="s2_q")
        s2_up = Signal(name="s2_up")
        with m.If(advance):
            m.d.sync += [
                s2_valid.eq(s1_valid),
                s2_neg.eq(s1_neg),
                s2_q.eq(shifted[d:]),
                s2_up.eq(shifted[:d] > s1_u),
            ]

        # Stage 3: round up and restore the sign with one adder.
        q = Signal(signed(self._g_width + lead + 1), name="q")
        m.d.comb += q.eq(s2_q)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s2_valid),
                self.o.payload.eq(Mux(s2_neg, ~q, q) + (s2_up ^ s2_neg)),
            ]
        return m

