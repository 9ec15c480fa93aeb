"""The simulated engine's transport: :class:`CocotbTransport` drives the host ports of
:class:`intrain.hdl.engine.Engine` from a cocotb test, one slice per clock, for
:class:`intrain.host.driver.EngineHost` (re-exported here)."""

from __future__ import annotations

from intrain.hdl.engine import Phase
from intrain.hdl.engine.crc import TensorCrc
from intrain.host.driver import EngineHost, RunCounters

__all__ = ["COUNTER_PORTS", "EngineHost", "CocotbTransport", "RunCounters", "counters_from_ports"]

#: The engine's optional counter ports, whose widths :func:`counters_from_ports` takes.
COUNTER_PORTS = ("steps", "phase_cycles", "phase_mac_cycles")


async def counters_from_ports(get, put, advance, ports, n_crcs) -> dict:
    """The counters of a run that has just ended (``done`` high), read from the engine's ports
    the same way by every transport: ``get(name)`` reads a port's value, ``put(name, value)``
    sets an input, ``await advance(n, settle)`` lets ``n`` clock cycles pass (and with
    ``settle``, the values settle for reading), ``ports`` maps the optional ports the design has
    (``steps``, ``phase_cycles``, ``phase_mac_cycles``) to their widths (a phase counter is a
    quarter of its port: the geometry's
    :attr:`~intrain.hdl.engine.EngineGeometry.counter_bits`); ``n_crcs`` CRCs are read, one per
    two cycles through ``crc_addr``, once they are final. Ends one cycle after the last CRC."""
    counters = {"cycles": get("cycles"), "mac_cycles": get("mac_cycles")}
    if "steps" in ports:
        counters["steps"] = get("steps")
        for port, suffix in (("phase_cycles", "cycles"), ("phase_mac_cycles", "mac_cycles")):
            if port not in ports:   # an engine without phase counters
                continue
            bits, width = get(port), ports[port] // len(Phase)
            for ph in Phase:
                counters[f"{ph.name.lower()}_{suffix}"] = \
                    bits >> (width * ph.value) & ((1 << width) - 1)
    if n_crcs:
        # The CRC of the last write can be asked for TensorCrc.LATENCY cycles after it (one or
        # more after ``done``), each a cycle before its answer; an edge before each address (a
        # settled simulator takes no input until the next).
        await advance(TensorCrc.LATENCY - 2, False)
        counters["crcs"] = []
        for t in range(n_crcs):
            await advance(1, False)
            put("crc_addr", t)
            await advance(1, True)
            counters["crcs"].append(get("crc_data"))
    await advance(1, False)
    return counters


class CocotbTransport:
    """The engine's host ports driven from a cocotb test: one slice per clock while the engine
    is idle; ``run`` pulses ``start`` and lets the simulator run freely until ``done``."""

    def __init__(self, dut, crcs: int = 0):
        from cocotb.triggers import ReadOnly, RisingEdge

        self.dut = dut
        self._crcs = crcs   # the engine's CRC count (its geometry's crc_tensors)
        self._edge = RisingEdge(dut.clk)
        self._settled = ReadOnly()
        self._done = RisingEdge(dut.done)
        # Every input gets a value: Icarus would carry X from an undriven payload into the
        # engine's address decoding.
        for name in ("host_write__valid", "host_write__payload", "host_read__valid",
                     "host_read__payload", "host_read_data__ready", "start", "batch", "train",
                     "lam"):
            if hasattr(dut, name):
                getattr(dut, name).value = 0

    async def _period(self) -> int:
        """The clock period in ps, measured once between two rising edges."""
        if getattr(self, "_period_ps", None) is None:
            from cocotb.utils import get_sim_time

            await self._edge
            t0 = get_sim_time("ps")
            await self._edge
            self._period_ps = max(1, int(get_sim_time("ps") - t0))
        return self._period_ps

    async def write(self, words: list[int]) -> None:
        dut = self.dut
        payload, valid, ready = dut.host_write__payload, dut.host_write__valid, \
            dut.host_write__ready
        k = 0
        await self._settled
        if ready.value:
            # The engine is idle and only the host starts it: ``ready`` stays high, so every
            # clock takes a slice.
            await self._edge
            valid.value = 1
            for word in words:
                payload.value = word
                await self._edge
            k = len(words)
        else:
            await self._edge
        valid.value = 0
        if k != len(words):
            raise RuntimeError(f"host_write took {k} of {len(words)} slices (is the engine "
                               "busy?)")

    async def read(self, words: list[int]) -> list[int]:
        dut = self.dut
        req, req_valid, req_ready = dut.host_read__payload, dut.host_read__valid, \
            dut.host_read__ready
        rsp, rsp_valid = dut.host_read_data__payload, dut.host_read_data__valid
        dut.host_read_data__ready.value = 1
        out: list[int] = []
        k = 0
        n = len(words)
        for _ in range(4 * n + 32):
            if len(out) == n:
                break
            if k < n:
                req.value = words[k]
                req_valid.value = 1
            else:
                req_valid.value = 0
            await self._settled
            if k < n and req_ready.value:
                k += 1
            if rsp_valid.value:
                out.append(rsp.value.to_unsigned())
            await self._edge
        req_valid.value = 0
        dut.host_read_data__ready.value = 0
        return out

    async def run(self, batch: int, train: bool, lam: int, limit: int | None = None) -> dict:
        dut = self.dut
        dut.batch.value = batch
        if hasattr(dut, "train"):
            dut.train.value = int(train)
            dut.lam.value = lam & 0xFF
        elif train:
            raise RuntimeError("this engine has no training step")
        period = None if limit is None else await self._period()
        dut.start.value = 1
        await self._edge
        dut.start.value = 0
        if limit is None:
            await self._done
        else:
            from cocotb.triggers import First, Timer

            # A timer, not ClockCycles: that counts every edge in Python, which made the
            # simulation of a run several times slower than the simulator alone.
            fired = await First(self._done, Timer(limit * period, unit="ps"))
            if fired is not self._done:
                what = "training step" if train else "forward pass"
                raise RuntimeError(f"the engine did not finish a {what} of {batch} samples in "
                                   f"{limit} cycles")
        await self._settled

        async def advance(n, settle):
            for _ in range(n):
                await self._edge
            if settle:
                await self._settled

        def put(name, value):
            getattr(dut, name).value = value

        return await counters_from_ports(
            lambda name: getattr(dut, name).value.to_unsigned(), put, advance,
            {n: len(getattr(dut, n)) for n in COUNTER_PORTS if hasattr(dut, n)}, self._crcs)
