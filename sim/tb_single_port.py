"""cocotb testbench of :class:`~intrain.hdl.single_port.SinglePortBank` built from the iCE40's
``SB_SPRAM256KA`` (yosys' model), against a Python dictionary.

``tests/test_single_port_vendor.py`` runs it on the exported Verilog of one bank. Parameters
(:func:`test_parameters`): ``depth``, ``width``, ``per_word``, ``hold`` (how the bank was built),
``seed`` and ``cycles`` (of the random phase).

``bank_matches_model`` first writes every address (writes only, one a cycle), then runs
``cycles`` cycles of random reads and writes that keep the bank's rules: with ``hold``, a write
may meet a read and waits in the hold register, but never while a write is held and a read takes
the cycle, and a read never names the address of a held or simultaneous write; without ``hold``
a cycle has a read or a write. Addresses are drawn near each other, so that a write often shares
its SPRAM word with the element read beside it. Every read's word, in the cycle after the read,
equals the dictionary's (every write before that read, in order), and ``collided`` stays low.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from intrain.sim.cocotb_helpers import read_unsigned, reset, start_clock, test_parameters

__all__ = ["legal_cycles"]


def legal_cycles(depth: int, width: int, hold: bool, cycles: int, rng: random.Random):
    """``cycles`` random ``(read, write)`` pairs (``read``: an address or None; ``write``: an
    ``(address, value)`` or None) that keep the bank's rules."""
    held = None      # the address of the write in the hold register
    out = []
    base = rng.randrange(depth)
    for _ in range(cycles):
        base = (base + rng.randrange(-3, 4)) % depth
        read = base if rng.random() < 0.5 else None
        write = None
        if rng.random() < 0.6 and (hold or read is None):
            addr = (base + rng.randrange(-2, 3)) % depth
            if read is None or (held is None and addr != read):
                write = (addr, rng.randrange(1 << width))
        if read is not None and held is not None and read == held:
            read = None
        if hold:
            if write is not None and (read is not None or held is not None):
                held = write[0]
            elif read is None:
                held = None
        out.append((read, write))
    return out


@cocotb.test()
async def bank_matches_model(dut):
    p = test_parameters()
    depth, width, hold = p["depth"], p["width"], p["hold"]
    rng = random.Random(p.get("seed", 0))
    start_clock(dut)
    dut.r_en.value = 0
    dut.w_en.value = 0
    await reset(dut)
    fill = [(None, (a, rng.randrange(1 << width))) for a in range(depth)]
    model: dict[int, int] = {}
    pending: int | None = None    # the address read in the previous cycle
    checked = 0
    for n, (read, write) in enumerate(fill + legal_cycles(depth, width, hold, p["cycles"], rng)):
        await FallingEdge(dut.clk)
        if pending is not None:
            got = read_unsigned(dut.r_data)
            if got != model[pending]:
                raise AssertionError(f"cycle {n}: read of address {pending} gave {got}, "
                                     f"{model[pending]} was written")
            checked += 1
        dut.r_en.value = read is not None
        dut.r_addr.value = read or 0
        dut.w_en.value = write is not None
        if write is not None:
            dut.w_addr.value, dut.w_data.value = write
        pending = read
        if write is not None:
            model[write[0]] = write[1]    # a later read sees it (never a held one's address)
    await FallingEdge(dut.clk)
    if int(dut.collided.value):
        raise AssertionError("the bank flagged a collision of a legal sequence")
    if checked < p["cycles"] // 4:
        raise AssertionError(f"only {checked} reads checked")
    dut._log.info("%d reads equal the model's words", checked)
