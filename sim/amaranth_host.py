"""The engine's transport in Amaranth's own simulator: :class:`AmaranthTransport` drives the host
ports of an :class:`~intrain.hdl.engine.Engine` from an async testbench, so that
:class:`intrain.host.driver.EngineHost` (the driver the simulated engine and the boards use)
runs against it unchanged, with optional random idle cycles and back-pressure."""

from __future__ import annotations

from intrain.hdl.engine import Phase
from intrain.hdl.engine.crc import TensorCrc

__all__ = ["AmaranthTransport"]


class AmaranthTransport:
    """``write``, ``read`` and ``run`` of :class:`~intrain.host.driver.EngineHost` on the ports
    of ``dut`` through the testbench context ``ctx``.

    Parameters
    ----------
    ctx
        The context of an ``add_testbench`` coroutine.
    dut : Engine
        The simulated engine.
    rng : numpy.random.Generator, optional
        With a generator, writes pause for random idle cycles and reads see random
        back-pressure on ``host_read_data``.
    """

    def __init__(self, ctx, dut, rng=None):
        self.ctx = ctx
        self.dut = dut
        self.rng = rng

    async def write(self, words: list[int]) -> None:
        ctx, dut, rng = self.ctx, self.dut, self.rng
        for word in words:
            while rng is not None and rng.random() < 0.3:
                ctx.set(dut.host_write.valid, 0)
                await ctx.tick()
            ctx.set(dut.host_write.payload.as_value(), word)
            ctx.set(dut.host_write.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.host_write.ready)
            if not ready:
                raise RuntimeError("host_write was not ready (is the engine busy?)")
        ctx.set(dut.host_write.valid, 0)

    async def read(self, words: list[int]) -> list[int]:
        ctx, dut, rng = self.ctx, self.dut, self.rng
        got, k = [], 0
        for _ in range(20 * len(words) + 50):
            if len(got) == len(words):
                break
            if k < len(words):
                ctx.set(dut.host_read.payload.as_value(), words[k])
            ctx.set(dut.host_read.valid, k < len(words))
            ctx.set(dut.host_read_data.ready, rng is None or rng.random() < 0.7)
            _, _, req_ok, data_ok, payload = await ctx.tick().sample(
                dut.host_read.valid & dut.host_read.ready,
                dut.host_read_data.valid & dut.host_read_data.ready,
                dut.host_read_data.payload.as_value())
            k += req_ok
            if data_ok:
                got.append(int(payload))
        ctx.set(dut.host_read.valid, 0)
        ctx.set(dut.host_read_data.ready, 0)
        return got

    async def run(self, batch: int, train: bool, lam: int, limit: int | None = None) -> dict:
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.batch, batch)
        ctx.set(dut.train, int(train))
        ctx.set(dut.lam, lam)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(limit or 10_000_000):
            _, _, done, busy = await ctx.tick().sample(dut.done, dut.busy)
            if done:
                if busy:
                    raise RuntimeError("the engine is busy in its done cycle")
                break
            if not busy:
                raise RuntimeError("the engine stopped without done")
        else:
            raise RuntimeError(f"the engine did not finish a run of {batch} samples in {limit} "
                               "cycles")
        counters = {"cycles": ctx.get(dut.cycles), "mac_cycles": ctx.get(dut.mac_cycles),
                    "steps": ctx.get(dut.steps)}
        for ph in Phase if dut.config.phase_counters else ():
            name = ph.name.lower()
            counters[f"{name}_cycles"] = ctx.get(dut.phase_cycles[ph.value])
            counters[f"{name}_mac_cycles"] = ctx.get(dut.phase_mac_cycles[ph.value])
        await ctx.tick().repeat(TensorCrc.LATENCY - 1)
        counters["crcs"] = []
        for t in range(len(dut.geometry.crc_tensors)):
            ctx.set(dut.crc_addr, t)
            await ctx.tick()
            counters["crcs"].append(ctx.get(dut.crc_data))
        return counters
