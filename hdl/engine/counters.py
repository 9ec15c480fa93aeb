"""The run counters of the engine: busy cycles and MAC-cycles, in all and per phase."""

from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .._util import check_int
from .geometry import Phase

__all__ = ["RunCounters"]


class RunCounters(wiring.Component):
    """Cycles and MAC-cycles of a run: ``cycles`` counts the cycles with ``busy``,
    ``mac_cycles`` adds ``macs`` (the array's products of the cycle) of every busy cycle one
    cycle later (``macs`` is late in its cycle: it is registered first). With ``per_phase``,
    ``phase_cycles`` and ``phase_mac_cycles`` split both by the :class:`Phase` of the cycle, so
    that their sums equal the totals. ``clear`` (a run starts) sets every counter to 0; it wins
    over a count in the same cycle.

    Members
    -------
    clear : ``In(1)``
    busy : ``In(1)``
    macs : ``In(macs_shape)``
    phase : ``In(Phase)``
        Only with ``per_phase``.
    cycles : ``Out(cycle_bits)``
    mac_cycles : ``Out(mac_bits)``
    phase_cycles, phase_mac_cycles : ``Out(data.ArrayLayout(cycle_bits or mac_bits, len(Phase)))``
        Only with ``per_phase``.
    """

    def __init__(self, cycle_bits, mac_bits, macs_shape, *, per_phase):
        self._per_phase = bool(per_phase)
        phases = {"phase": In(Phase),
                  "phase_cycles": Out(data.ArrayLayout(cycle_bits, len(Phase))),
                  "phase_mac_cycles": Out(data.ArrayLayout(mac_bits, len(Phase)))} \
            if per_phase else {}
        super().__init__({
            "clear": In(1),
            "busy": In(1),
            "macs": In(Shape.cast(macs_shape)),
            "cycles": Out(check_int("Cycle counter width", cycle_bits, 1)),
            "mac_cycles": Out(check_int("MAC counter width", mac_bits, 1)),
            **phases,
        })

    def elaborate(self, platform):
        m = Module()
        macs = Signal.like(self.macs, name="macs_reg")
        m.d.sync += [macs.eq(Mux(self.busy, self.macs, 0)),
                     self.mac_cycles.eq(self.mac_cycles + macs)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        counters = [self.cycles, self.mac_cycles]
        if self._per_phase:
            macs_phase = Signal(Phase, name="macs_phase")   # the phase of ``macs``
            m.d.sync += macs_phase.eq(self.phase)
            for ph in Phase:
                n = ph.value
                with m.If(macs_phase == ph):
                    m.d.sync += self.phase_mac_cycles[n].eq(self.phase_mac_cycles[n] + macs)
                with m.If(self.busy & (self.phase == ph)):
                    m.d.sync += self.phase_cycles[n].eq(self.phase_cycles[n] + 1)
            counters += [c[ph.value] for c in (self.phase_cycles, self.phase_mac_cycles)
                         for ph in Phase]
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in counters]
        return m
