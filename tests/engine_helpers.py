"""Host-side helpers of the engine tests: whole matrices and runs through the host driver that
the simulated engine and the boards use (:class:`intrain.host.driver.EngineHost`, here over
:class:`intrain.sim.amaranth_host.AmaranthTransport`), raw slice reads, and random weights and
inputs."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from intrain.hdl.engine import Engine, HostTarget, Phase
from intrain.hdl.transpose_memory import SliceMode
from intrain.host.checked import CheckedTrainer
from intrain.host.driver import EngineHost
from intrain.sim.amaranth_host import AmaranthTransport

W, A, P = HostTarget.WEIGHTS, HostTarget.ACTIVATIONS, HostTarget.PREDICTIONS
LABELS, ERRORS = HostTarget.LABELS, HostTarget.ERRORS
ROW, COLUMN = SliceMode.ROW, SliceMode.COLUMN


def host(ctx, dut, rng=None) -> EngineHost:
    """The engine's host driver on the simulated ports (random stalls if ``rng``)."""
    return EngineHost(dut.geometry, AmaranthTransport(ctx, dut, rng))


async def write_matrix(ctx, dut, target, layer, matrix, rng=None):
    """Row slices covering ``matrix``, one per cycle (with random idle cycles if ``rng``)."""
    await host(ctx, dut, rng).write_matrix(target, layer, np.asarray(matrix))


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
    """``rows x cols`` of a memory through pipelined row-slice reads (random back-pressure if
    ``rng``)."""
    return await host(ctx, dut, rng).read_matrix(target, layer, rows, cols)


async def run_forward(ctx, dut, batch):
    """A forward pass; returns ``(cycles, mac_cycles)``."""
    counters = await run_engine(ctx, dut, batch, train=False)
    return counters["cycles"], counters["mac_cycles"]


def simulate(dut, testbench):
    """Run ``testbench`` on ``dut``; an :class:`Engine` must then never have read a memory word
    on the edge it wrote it (the board builds treat such reads as undefined), nor have given one
    memory port two accesses in a cycle (:attr:`Engine.port_conflict`)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    memories = dut.memories if isinstance(dut, Engine) else {}

    async def checked(ctx):
        await testbench(ctx)
        collided = [name for name, mem in memories.items() if ctx.get(mem.collided)]
        assert not collided, f"read and written on the same edge: {collided}"
        if isinstance(dut, Engine):
            assert not ctx.get(dut.port_conflict), "two accesses to one memory port at once"

    sim.add_testbench(checked)
    sim.run()


def random_weights(config, rng):
    return [rng.integers(-p.w_max, p.w_max + 1, (p.n_out, p.n_in)) for p in config.plan]


def random_inputs(config, rng, batch):
    """``batch`` random inputs: vectors, or images of the network's input shape."""
    m = (1 << (config.input_bits - 1)) - 1
    return rng.integers(-m, m + 1, (batch, *(config.input_shape or (config.n_inputs,))))


async def run_engine(ctx, dut, batch, *, train, lam=0, limit=1_000_000):
    """A run (a training step if ``train``) through the host driver; returns every counter:
    ``cycles``, ``mac_cycles``, ``steps``, ``phase_cycles`` and ``phase_mac_cycles`` (lists by
    :class:`Phase`) and ``crcs``."""
    counters = await host(ctx, dut).run(batch, train=train, lam=lam)
    phases = [ph.name.lower() for ph in Phase]
    counters["phase_cycles"] = [counters[f"{n}_cycles"] for n in phases]
    counters["phase_mac_cycles"] = [counters[f"{n}_mac_cycles"] for n in phases]
    return counters


def random_batch(config, rng, batch):
    return random_inputs(config, rng, batch), rng.integers(0, config.layers[-1], batch)


def train_checked(config, steps, seed=1, batches=None):
    """``steps`` checked training steps of random batches (sizes from ``batches``) on the
    simulated engine; returns the trainer and the counters of every step."""
    dut = Engine(config)
    rng = np.random.default_rng(seed)
    batches = batches or [config.batch_size] * steps
    out = {}

    async def testbench(ctx):
        trainer = CheckedTrainer(host(ctx, dut), config, check_every=1)
        await trainer.load()
        runs = []
        for b in batches:
            a0, labels = random_batch(config, rng, b)
            before = dict(trainer.counters)
            await trainer._train_step(a0, labels, lam=-2)
            runs.append((b, {k: v - before.get(k, 0) for k, v in trainer.counters.items()}))
        out["trainer"], out["runs"] = trainer, runs

    simulate(dut, testbench)
    return dut, out["trainer"], out["runs"]
