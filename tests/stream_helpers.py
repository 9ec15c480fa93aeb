# amaranth: UnusedElaboratable=no
"""Drive a component's input stream and collect its output stream in the Amaranth simulator,
with random idle cycles on the input and random back-pressure on the output.

One testbench does both sides cycle by cycle: it presents the next element (holding ``valid``
and the payload until the element is accepted, as a stream producer must), chooses ``ready`` at
random, and records every transfer (``valid & ready`` sampled at the clock edge) on either side.
After the expected outputs have arrived it keeps ``ready`` high for a while and checks that no
further output appears.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

__all__ = ["StreamResult", "assert_latency", "run_stream"]


@dataclass
class StreamResult:
    """What :func:`run_stream` observed."""

    outputs: list = field(default_factory=list)
    """The output payloads, in order (as ``ctx.get`` returns them)."""
    accept_cycles: list = field(default_factory=list)
    """The cycle of each input transfer."""
    output_cycles: list = field(default_factory=list)
    """The cycle of each output transfer."""
    cycles: int = 0
    """Cycles simulated before the drain."""


def run_stream(dut, inputs, n_outputs, *, sideband=None, valid_prob=0.7, ready_prob=0.7,
               seed=0, drain=16, max_cycles=None, i=None, o=None, convert=None):
    """Stream ``inputs`` into ``dut.i`` and collect ``n_outputs`` payloads from ``dut.o``.

    Parameters
    ----------
    dut : wiring.Component
        The component under test.
    inputs : sequence
        Payload values for ``ctx.set`` (integers, or dicts for struct layouts).
    n_outputs : int
        How many outputs must come out; the run fails on a timeout or on any extra output.
    sideband : sequence of (signal, values) or None
        Ports sampled with each element (such as a run-time shift): ``values[k]`` is set
        together with input ``k`` and held until it is accepted.
    valid_prob, ready_prob : float
        Probability of presenting the next element in a cycle / of ``ready`` in a cycle.
    seed : int
        Seeds the stall pattern.
    drain : int
        Cycles with ``ready`` high after the last expected output, in which ``o.valid`` must
        stay low.
    convert : callable or None
        Applied to every output payload as it is recorded.
    """
    rng = random.Random(seed)
    i = dut.i if i is None else i
    o = dut.o if o is None else o
    inputs = list(inputs)
    sideband = [] if sideband is None else [(sig, list(values)) for sig, values in sideband]
    for sig, values in sideband:
        assert len(values) == len(inputs), f"{len(values)} values for {sig!r}"
    if max_cycles is None:
        max_cycles = 200 + int(4 * (len(inputs) + n_outputs) / min(valid_prob, ready_prob))
    result = StreamResult()

    async def testbench(ctx):
        k = 0
        presenting = False
        cycle = 0
        while k < len(inputs) or len(result.outputs) < n_outputs:
            if cycle > max_cycles:
                raise AssertionError(
                    f"timeout after {cycle} cycles: {k}/{len(inputs)} inputs accepted, "
                    f"{len(result.outputs)}/{n_outputs} outputs")
            if not presenting and k < len(inputs) and rng.random() < valid_prob:
                ctx.set(i.payload, inputs[k])
                for sig, values in sideband:
                    ctx.set(sig, values[k])
                ctx.set(i.valid, 1)
                presenting = True
            ctx.set(o.ready, rng.random() < ready_prob)
            _, _, i_valid, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                i.valid, i.ready, o.valid, o.ready, o.payload)
            if i_valid and i_ready:
                result.accept_cycles.append(cycle)
                k += 1
                presenting = False
                ctx.set(i.valid, 0)
            if o_valid and o_ready:
                if len(result.outputs) >= n_outputs:
                    raise AssertionError(f"extra output {payload!r} after {n_outputs} expected")
                result.outputs.append(convert(payload) if convert else payload)
                result.output_cycles.append(cycle)
            cycle += 1
        result.cycles = cycle
        ctx.set(o.ready, 1)
        for _ in range(drain):
            _, _, o_valid = await ctx.tick().sample(o.valid)
            assert not o_valid, "output valid after the last expected output"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return result


def assert_latency(result, latency, *, exact=False):
    """Check one output per input, each no earlier than ``latency`` cycles after its input was
    accepted (exactly ``latency`` with ``exact``, for runs without back-pressure)."""
    assert len(result.output_cycles) == len(result.accept_cycles)
    for k, (a, b) in enumerate(zip(result.accept_cycles, result.output_cycles, strict=True)):
        if exact:
            assert b - a == latency, f"element {k}: accepted at {a}, out at {b}"
        else:
            assert b - a >= latency, f"element {k}: accepted at {a}, out at {b}"
