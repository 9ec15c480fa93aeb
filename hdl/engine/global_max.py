"""``RL2(max |x|)`` of a whole tensor streamed several elements per cycle."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..log2round import Log2Round
from ..max_abs import MaxAbs
from .geometry import max_tree_registers

__all__ = ["GlobalMaxLog2"]


class GlobalMaxLog2(wiring.Component):
    """``RL2(max |x|)`` over a whole tensor streamed ``lanes`` elements per cycle.

    One :class:`MaxAbs` per lane folds its lane (lanes outside the tensor carry 0); after the
    element with ``last``, the lane maxima are combined by a tree of pairwise maxima, two
    levels per register (:meth:`extra_latency` registers more than the one of 2 to 4 lanes), and
    go through :class:`Log2Round`. ``done`` rises ``6 + extra_latency(lanes)`` cycles after the
    ``last`` element and holds ``rl2`` until ``clear``. A tensor of zeros gives ``rl2 = 0``, the
    same as a maximum of 1; its QE or QG is all zero either way.
    """

    @staticmethod
    def extra_latency(lanes) -> int:
        """Registers in the tree of lane maxima beyond the first (:func:`max_tree_registers`)."""
        return max_tree_registers(lanes)

    def __init__(self, width, lanes):
        self._width, self._lanes = width, lanes
        super().__init__({
            "valid": In(1),
            "last": In(1),
            "values": In(data.ArrayLayout(signed(width), lanes)),
            "clear": In(1),
            "done": Out(1),
            "rl2": Out(range(width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        folds = []
        for k in range(self._lanes):
            fold = m.submodules[f"max_{k}"] = MaxAbs(self._width)
            m.d.comb += [
                fold.i.valid.eq(self.valid),
                fold.i.payload.value.eq(self.values[k]),
                fold.i.payload.last.eq(self.last),
                fold.o.ready.eq(1),
            ]
            folds.append(fold)
        # A balanced tree: a serial chain of ``lanes - 1`` compares would limit the clock of a
        # wide array (8 lanes: 28 MHz on ECP5).
        level, valid, depth = [fold.o.payload for fold in folds], folds[0].o.valid, 0
        while len(level) > 1:
            level = [Mux(b > a, b, a) for a, b in zip(level[0::2], level[1::2])] \
                + level[len(level) - len(level) % 2:]
            depth += 1
            if depth % 2 == 0 and len(level) > 1:
                regs = [Signal(unsigned(self._width), name=f"tree_{depth}_{n}")
                        for n in range(len(level))]
                valid_reg = Signal(name=f"tree_{depth}_valid")
                m.d.sync += [*[r.eq(v) for r, v in zip(regs, level)], valid_reg.eq(valid)]
                level, valid = regs, valid_reg
        log2 = m.submodules.log2 = Log2Round(self._width)
        m.d.sync += [log2.i.valid.eq(valid), log2.i.payload.eq(level[0])]
        m.d.comb += log2.o.ready.eq(1)
        with m.If(log2.o.valid):
            m.d.sync += [self.done.eq(1), self.rl2.eq(log2.o.payload)]
        with m.If(self.clear):
            m.d.sync += self.done.eq(0)
        return m
