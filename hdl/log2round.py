"""``round(log2 m)`` of an unsigned integer, exactly: the hardware twin of
``intrain.golden.arith.rl2``."""

from __future__ import annotations

import math

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Log2Round", "rl2_thresholds"]


def rl2_thresholds(width: int) -> tuple[int, ...]:
    """``ceil(2 ** (p + 0.5))`` for ``p = 0 .. width - 1``, in integers: the smallest ``t`` with
    ``t * t >= 2 ** (2p + 1)``."""
    return tuple(math.isqrt((1 << (2 * p + 1)) - 1) + 1 for p in range(width))


class Log2Round(wiring.Component):
    """Exact ``round(log2 m)`` of an unsigned ``width``-bit integer ``m > 0``.

    With ``p`` the position of the leading one (``p = floor(log2 m)``), the result is ``p + 1``
    if ``m >= ceil(2 ** (p + 0.5))`` and ``p`` otherwise: one compare against a constant table
    (:func:`rl2_thresholds`). There is no tie: ``m * m = 2 ** (2p + 1)`` has no integer solution.
    ``m = 0`` gives 0 (the same as ``m = 1``); callers that need to tell the two apart test
    ``m`` itself.

    Fully pipelined: one element per cycle. Latency: 2 cycles (stage 1 finds the leading one,
    stage 2 compares and adds). All stages advance when the output register is empty or read
    (``~o.valid | o.ready``).

    Parameters
    ----------
    width : int
        Width of the unsigned input.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    i : ``In(stream.Signature(unsigned(width)))``
        The values ``m``.
    o : ``Out(stream.Signature(range(width + 1)))``
        ``round(log2 m)``, from 0 to ``width``.
    """

    #: Clock edges from accepting a value to presenting its result (the cycle model counts by it).
    LATENCY = 2

    def __init__(self, width, *, src_loc_at=0):
        if not isinstance(width, int) or isinstance(width, bool):
            raise TypeError(f"Input width must be an integer, not {width!r}")
        if width < 1:
            raise ValueError(f"Input width must be at least 1, not {width!r}")
        self._width = width
        super().__init__({
            "i": In(stream.Signature(unsigned(width))),
            "o": Out(stream.Signature(range(width + 1))),
        }, src_loc_at=src_loc_at + 1)

    @property
    def width(self) -> int:
        return self._width

    @property
    def latency(self) -> int:
        """Clock edges from accepting a value to presenting its result: :attr:`LATENCY`."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # Stage 1: leading-one position (a priority encoder: the highest set bit wins).
        # Chains of ``Mux`` rather than ``m.If``/``m.Switch``: those become Verilog ``always @*``
        # blocks, which Icarus Verilog (``-g2012``) first evaluates when an input changes (an
        # all-zero input from reset on would leave them X).
        lead = Signal(range(self._width), name="lead")
        first = 0
        for j in range(self._width):
            first = Mux(self.i.payload[j], j, first)
        m.d.comb += lead.eq(first)
        s1_valid = Signal(name="s1_valid")
        s1_m = Signal(unsigned(self._width), name="s1_m")
        s1_lead = Signal.like(lead, name="s1_lead")
        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_m.eq(self.i.payload), s1_lead.eq(lead)]

        # Stage 2: one compare against the threshold of that position.
        thresholds = rl2_thresholds(self._width)
        threshold = Signal(range(thresholds[-1] + 1), name="threshold")
        table = 0
        for p, t in reversed(list(enumerate(thresholds))):
            table = Mux(s1_lead == p, t, table)
        m.d.comb += threshold.eq(table)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                self.o.payload.eq(s1_lead + (s1_m >= threshold)),
            ]
        return m
