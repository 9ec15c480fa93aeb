"""``max |x|`` over a tensor streamed element by element: the hardware twin of
``intrain.golden.arith.max_abs``."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MaxAbs"]


class MaxAbs(wiring.Component):
    """Fold a stream of signed values into ``max |x|``, one result per tensor.

    A tensor is the run of elements up to and including one whose ``last`` flag is set; its
    result is emitted once, after that element. ``|x|`` of the most negative input,
    ``2 ** (width - 1)``, is represented exactly. A tensor of zeros gives 0.

    Fully pipelined: one element per cycle, no gap between tensors. Latency: 2 cycles from
    accepting the ``last`` element to presenting the result (stage 1 takes the absolute value,
    stage 2 folds it into the running maximum and, on ``last``, loads the output register and
    restarts from 0). All stages advance when the output register is empty or read
    (``~o.valid | o.ready``).

    Parameters
    ----------
    width : int
        Width of the signed input.
    src_loc_at : int
        Stack frames to skip when recording where the component was created.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout({"value": signed(width), "last": 1})))``
        The elements; ``last`` marks the final element of a tensor.
    o : ``Out(stream.Signature(unsigned(width)))``
        ``max |x|`` of each tensor.
    """

    #: Clock edges from accepting the last element of a tensor to presenting its result (the
    #: cycle model counts by it).
    LATENCY = 2

    def __init__(self, width, *, src_loc_at=0):
        if not isinstance(width, int) or isinstance(width, bool):
            raise TypeError(f"Input width must be an integer, not {width!r}")
        if width < 1:
            raise ValueError(f"Input width must be at least 1, not {width!r}")
        self._width = width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"value": signed(width), "last": 1}))),
            "o": Out(stream.Signature(unsigned(width))),
        }, src_loc_at=src_loc_at + 1)

    @property
    def width(self) -> int:
        return self._width

    @property
    def latency(self) -> int:
        """Clock edges from accepting the last element of a tensor to presenting its result:
        :attr:`LATENCY`."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # Stage 1: absolute value (unsigned, so that 2 ** (width - 1) fits).
        x = self.i.payload.value
        s1_valid = Signal(name="s1_valid")
        s1_last = Signal(name="s1_last")
        s1_abs = Signal(unsigned(self._width), name="s1_abs")
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1_last.eq(self.i.payload.last),
                s1_abs.eq(Mux(x < 0, -x, x)),
            ]

        # Stage 2: running maximum; the output register takes it on ``last``.
        running = Signal(unsigned(self._width), name="running")
        folded = Signal(unsigned(self._width), name="folded")
        m.d.comb += folded.eq(Mux(s1_abs > running, s1_abs, running))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(s1_valid & s1_last)
            with m.If(s1_valid):
                with m.If(s1_last):
                    m.d.sync += [self.o.payload.eq(folded), running.eq(0)]
                with m.Else():
                    m.d.sync += running.eq(folded)
        return m
