"""Host-side helpers of the engine tests: whole matrices through the host ports, runs, and
random weights and inputs."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from intrain.hdl.engine import HostTarget
from intrain.hdl.transpose_memory import SliceMode

W, A, P = HostTarget.WEIGHTS, HostTarget.ACTIVATIONS, HostTarget.PREDICTIONS
LABELS, ERRORS = HostTarget.LABELS, HostTarget.ERRORS
ROW, COLUMN = SliceMode.ROW, SliceMode.COLUMN


async def write_matrix(ctx, dut, target, layer, matrix, rng=None):
    """Row slices covering ``matrix``, one per cycle (with random idle cycles if ``rng``)."""
    lanes = dut.lanes
    rows, cols = matrix.shape
    for r in range(rows):
        for c in range(0, cols, lanes):
            n = min(lanes, cols - c)
            data = [int(v) for v in matrix[r, c:c + n]] + [0] * (lanes - n)
            while rng is not None and rng.random() < 0.3:
                ctx.set(dut.host_write.valid, 0)
                await ctx.tick()
            ctx.set(dut.host_write.payload, {
                "target": target, "layer": layer, "mode": ROW, "row": r, "col": c,
                "data": data, "mask": (1 << lanes) - 1})
            ctx.set(dut.host_write.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.host_write.ready)
            assert ready
    ctx.set(dut.host_write.valid, 0)


async def read_slices(ctx, dut, requests, rng=None):
    """Pipelined reads: the slice of every request, in order (random back-pressure if ``rng``)."""
    got = []
    k = 0
    for _ in range(20 * len(requests) + 50):
        if len(got) == len(requests):
            break
        if k < len(requests):
            ctx.set(dut.host_read.payload, requests[k])
        ctx.set(dut.host_read.valid, k < len(requests))
        ctx.set(dut.host_read_data.ready, rng is None or rng.random() < 0.7)
        _, _, req_ok, data_ok, payload = await ctx.tick().sample(
            dut.host_read.valid & dut.host_read.ready,
            dut.host_read_data.valid & dut.host_read_data.ready, dut.host_read_data.payload)
        k += req_ok
        if data_ok:
            got.append([int(v) for v in payload])
    ctx.set(dut.host_read.valid, 0)
    ctx.set(dut.host_read_data.ready, 0)
    assert len(got) == len(requests), "host read timed out"
    return got


async def read_matrix(ctx, dut, target, layer, rows, cols, rng=None):
    lanes = dut.lanes
    starts = [(r, c) for r in range(rows) for c in range(0, cols, lanes)]
    got = await read_slices(ctx, dut, [
        {"target": target, "layer": layer, "mode": ROW, "row": r, "col": c} for r, c in starts],
        rng)
    out = np.zeros((rows, cols), dtype=np.int64)
    for (r, c), values in zip(starts, got, strict=True):
        n = min(lanes, cols - c)
        out[r, c:c + n] = values[:n]
    return out


async def run_forward(ctx, dut, batch):
    """Start a forward pass, wait for ``done``; returns ``(cycles, mac_cycles)``."""
    ctx.set(dut.batch, batch)
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    for _ in range(100000):
        _, _, done, busy = await ctx.tick().sample(dut.done, dut.busy)
        if done:
            assert not busy
            return ctx.get(dut.cycles), ctx.get(dut.mac_cycles)
        assert busy
    raise AssertionError("the forward pass did not finish")


def simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def random_weights(config, rng):
    return [rng.integers(-p.w_max, p.w_max + 1, (p.n_out, p.n_in)) for p in config.plan]


def random_inputs(config, rng, batch):
    m = (1 << (config.input_bits - 1)) - 1
    return rng.integers(-m, m + 1, (batch, config.layers[0]))


async def run_engine(ctx, dut, batch, *, train, lam=0, limit=1_000_000):
    """Start a run (a training step if ``train``), wait for ``done``; returns every counter:
    ``cycles``, ``mac_cycles``, ``steps``, ``phase_cycles`` and ``phase_mac_cycles`` (lists)."""
    ctx.set(dut.batch, batch)
    ctx.set(dut.train, int(train))
    ctx.set(dut.lam, lam)
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    for _ in range(limit):
        _, _, done, busy = await ctx.tick().sample(dut.done, dut.busy)
        if done:
            assert not busy
            return {
                "cycles": ctx.get(dut.cycles), "mac_cycles": ctx.get(dut.mac_cycles),
                "steps": ctx.get(dut.steps),
                "phase_cycles": [int(v) for v in ctx.get(dut.phase_cycles)],
                "phase_mac_cycles": [int(v) for v in ctx.get(dut.phase_mac_cycles)],
            }
        assert busy
    raise AssertionError("the run did not finish")
