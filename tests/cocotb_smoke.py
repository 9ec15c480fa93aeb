"""cocotb tests of the small stream adder of ``test_sim_runner.py``: ``o = a + b + bias``.

Run by :func:`intrain.sim.runner.run_cocotb`, which passes ``width`` (of ``a``, ``b`` and
``bias``), ``count`` (elements to send) and ``offset`` (added to the expected values: a non-zero
offset is a deliberately wrong model, to show that a failing check fails the run).
"""

import random

import cocotb
from amaranth import signed
from amaranth.lib import data
from cocotb.triggers import ClockCycles, RisingEdge

from intrain.sim.cocotb_helpers import (
    StreamDriver,
    StreamMonitor,
    assert_sequence_equal,
    read_signed,
    reset,
    start_clock,
    test_parameters,
    write_signed,
)

LATENCY = 1  # the adder's output register


def layouts(width):
    """The adder's payload shapes (as in ``StreamAdder``)."""
    return data.StructLayout({"a": signed(width), "b": signed(width)}), signed(width + 2)


def operands(width, count):
    """``count`` random pairs, the extremes first."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    pairs = [{"a": lo, "b": lo}, {"a": hi, "b": hi}, {"a": lo, "b": hi}, {"a": 0, "b": -1}]
    while len(pairs) < count:
        pairs.append({"a": random.randint(lo, hi), "b": random.randint(lo, hi)})
    return pairs[:count]


async def setup(dut, bias):
    start_clock(dut)
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    write_signed(dut.bias, bias)
    await reset(dut)


@cocotb.test()
async def adder_matches_model_under_stalls(dut):
    p = test_parameters()
    width, count = p["width"], p["count"]
    in_shape, out_shape = layouts(width)
    bias = -(1 << (width - 1)) + 1
    await setup(dut, bias)
    source = StreamDriver(dut, "i", shape=in_shape, stall=0.4)
    sink = StreamMonitor(dut, "o", shape=out_shape, stall=0.4)
    pairs = operands(width, count)
    source.extend(pairs)
    await sink.wait_for(count, timeout_cycles=20 * count)
    await sink.assert_quiet(cycles=30, expected=count)
    expected = [x["a"] + x["b"] + bias + p["offset"] for x in pairs]
    assert_sequence_equal(sink.received, expected, "o")
    assert source.idle and source.sent == count


@cocotb.test()
async def adder_streams_one_element_per_cycle(dut):
    p = test_parameters()
    width, count = p["width"], p["count"]
    in_shape, out_shape = layouts(width)
    await setup(dut, 3)
    source = StreamDriver(dut, "i", shape=in_shape)
    sink = StreamMonitor(dut, "o", shape=out_shape)
    pairs = operands(width, count)
    source.extend(pairs)
    # Without stalls, element k is accepted at edge k + 1 and comes out LATENCY edges later.
    await ClockCycles(dut.clk, count + LATENCY + 1)
    expected = [x["a"] + x["b"] + 3 + p["offset"] for x in pairs]
    assert_sequence_equal(sink.received, expected, "o")
    await RisingEdge(dut.clk)
    assert read_signed(dut.o__payload) == expected[-1]
    await sink.assert_quiet(cycles=10)
