"""Who drives each memory's ports: the engine's stages while it runs, the host otherwise."""

from __future__ import annotations

from typing import NamedTuple

from amaranth import Mux, Signal, Value

from .._util import first

__all__ = ["MemoryPorts", "Read", "Write"]


class Read(NamedTuple):
    """A stage reads the slice ``(mode, row, col)`` of a memory in the cycles ``when`` holds."""
    when: Value
    mode: Value
    row: Value
    col: Value


class Write(NamedTuple):
    """A stage writes ``data`` (one value per lane, missing lanes 0) under ``mask`` to the slice
    ``(mode, row, col)`` of a memory in the cycles ``when`` holds."""
    when: Value
    mode: Value
    row: Value
    col: Value
    mask: Value
    data: list


class MemoryPorts:
    """The accesses every stage makes to each memory, and the memories' ports built from them.

    Stages add their accesses (:meth:`read`, :meth:`write`) while the engine is built; then
    :meth:`connect` drives a memory's read and write ports: while ``busy``, from the access whose
    condition holds (the stages' conditions exclude one another: different jobs, or different
    stages of one job), otherwise from the host's request. Two of a port's accesses holding in
    the same cycle would be a design error; :attr:`conflict` records one (a simulation check, as
    the memories' ``collided``; nothing reads it in a build).
    """

    def __init__(self, memories):
        self._reads = {id(mem): [] for mem in memories}
        self._writes = {id(mem): [] for mem in memories}
        self.conflict = Signal(name="port_conflict")
        self._conflicts = []

    def read(self, mem, when, mode, row, col) -> None:
        self._reads[id(mem)].append(Read(when, mode, row, col))

    def write(self, mem, when, mode, row, col, mask, data) -> None:
        self._writes[id(mem)].append(Write(when, mode, row, col, mask, list(data)))

    def reads(self, mem) -> list[Read]:
        return list(self._reads[id(mem)])

    def writes(self, mem) -> list[Write]:
        return list(self._writes[id(mem)])

    @staticmethod
    def _two_at_once(accesses) -> Value:
        seen, twice = Value.cast(0), Value.cast(0)
        for a in accesses:
            twice = twice | (seen & a.when)
            seen = seen | a.when
        return twice

    def connect(self, m, mem, busy, host_read: Read | None, host_write: Write | None) -> None:
        """Drive ``mem``'s ports: the engine's accesses while ``busy``, else the host's (none:
        idle)."""
        lanes = len(mem.write.payload.data)
        rd, wr = self.reads(mem), self.writes(mem)
        host_read = host_read or Read(0, 0, 0, 0)
        host_write = host_write or Write(0, 0, 0, 0, 0, [0] * lanes)

        def pick(accesses, field, host):
            return Mux(busy, first((a.when, getattr(a, field)) for a in accesses),
                       getattr(host, field))

        rd_port, wr_port = mem.read.payload, mem.write.payload
        m.d.comb += [
            mem.read.valid.eq(Mux(busy, first((a.when, 1) for a in rd), host_read.when)),
            Value.cast(rd_port.mode).eq(pick(rd, "mode", host_read)),
            rd_port.row.eq(pick(rd, "row", host_read)),
            rd_port.col.eq(pick(rd, "col", host_read)),
            mem.write.valid.eq(Mux(busy, first((a.when, 1) for a in wr), host_write.when)),
            Value.cast(wr_port.mode).eq(pick(wr, "mode", host_write)),
            wr_port.row.eq(pick(wr, "row", host_write)),
            wr_port.col.eq(pick(wr, "col", host_write)),
            wr_port.mask.eq(pick(wr, "mask", host_write)),
            *[wr_port.data[k].eq(Mux(busy, first(
                (a.when, a.data[k] if k < len(a.data) else 0) for a in wr), host_write.data[k]))
              for k in range(lanes)],
            mem.read_data.ready.eq(1),
        ]
        self._conflicts.append(busy & (self._two_at_once(rd) | self._two_at_once(wr)))

    def build_conflict(self, m) -> None:
        """Make :attr:`conflict` sticky over every memory connected so far."""
        any_now = Value.cast(0)
        for c in self._conflicts:
            any_now = any_now | c
        with m.If(any_now):
            m.d.sync += self.conflict.eq(1)
