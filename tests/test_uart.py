# amaranth: UnusedElaboratable=no
"""The UART in the Amaranth simulator: every byte value through the transmitter into the
receiver, the transmitter's waveform against the 8N1 framing bit by bit, back-to-back bytes,
senders a few percent off the baud rate, framing errors, breaks and glitches, odd and even
divisors."""

from __future__ import annotations

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.sim import Simulator

from intrain.errors import ConfigError
from intrain.hdl.uart import MIN_DIVISOR, UartRx, UartTx, uart_divisor


def _frame_bits(byte: int, stop: int = 1) -> list[int]:
    return [0] + [byte >> k & 1 for k in range(8)] + [stop]


def _run_rx(divisor, line, extra=50):
    """Drive ``rx`` with ``line`` (one value per cycle); the bytes and error pulses seen."""
    dut = UartRx(divisor)
    got, errors = [], []
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle, v in enumerate(list(line) + [1] * extra):
            ctx.set(dut.rx, v)
            _, _, valid, payload, error = await ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                   dut.error)
            if valid:
                got.append((cycle, payload))
            if error:
                errors.append(cycle)

    sim.add_testbench(bench)
    sim.run()
    return got, errors


def _line(bytes_, period, stop=1, gap=0):
    """The serial waveform of ``bytes_``, ``period`` cycles per bit (an idle start)."""
    line = [1] * 7
    for b in bytes_:
        for bit in _frame_bits(b, stop):
            line += [bit] * period
        line += [1] * gap
    return line


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_every_byte_value_goes_through_tx_into_rx_back_to_back(divisor):
    m = Module()
    tx = m.submodules.tx = UartTx(divisor)
    rx = m.submodules.rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(256)) + [0x55, 0xAA, 0x00, 0xFF]
    sent_at, got, line = [], [], []

    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        k = 0
        for cycle in range(10 * divisor * (len(data) + 2) + 20):
            if k < len(data):
                ctx.set(tx.i.payload, data[k])
            ctx.set(tx.i.valid, k < len(data))
            _, _, taken, level, valid, payload, error = await ctx.tick().sample(
                tx.i.ready & tx.i.valid, tx.tx, rx.o.valid, rx.o.payload, rx.error)
            line.append(level)
            assert not error
            if taken:
                sent_at.append(cycle)
                k += 1
            if valid:
                got.append(payload)

    sim.add_testbench(bench)
    sim.run()
    assert got == data
    # Back to back: a byte every 10 bit times exactly.
    assert [b - a for a, b in zip(sent_at, sent_at[1:])] == [10 * divisor] * (len(data) - 1)
    # The waveform, sampled in the middle of every bit, is the 8N1 frame of every byte.
    start = sent_at[0] + 1
    for k, b in enumerate(data):
        t0 = start + 10 * divisor * k
        bits = [line[t0 + divisor * j + divisor // 2] for j in range(10)]
        assert bits == _frame_bits(b), (k, b, bits)
    assert all(v == 1 for v in line[:start])  # idle high before the first start bit


@pytest.mark.parametrize(("divisor", "period"), [(32, 31), (32, 33), (16, 16)])
def test_receiver_tolerates_a_sender_a_few_percent_off(divisor, period):
    data = [0x00, 0xFF, 0x5A, 0xA5, 0x01, 0x80, 0x3C]
    got, errors = _run_rx(divisor, _line(data, period))
    assert [b for _, b in got] == data and not errors


def test_framing_error_drops_the_byte_and_the_next_one_arrives():
    d = 6
    # 0x42 with stop bit 0 and the line left low for a while (a break), then a good byte.
    line = [1] * 7 + sum(([b] * d for b in _frame_bits(0x42, stop=0)), []) + [0] * (20 * d)
    line += [1] * (3 * d) + sum(([b] * d for b in _frame_bits(0x99)), [])
    got, errors = _run_rx(d, line)
    assert [b for _, b in got] == [0x99]
    assert len(errors) == 1


def test_framing_error_between_good_bytes():
    d = 5
    line = _line([0x11], d) + sum(([b] * d for b in _frame_bits(0x22, stop=0)), [])
    line += [1] * (2 * d) + _line([0x33], d)[7:]
    got, errors = _run_rx(d, line)
    assert [b for _, b in got] == [0x11, 0x33]
    assert len(errors) == 1


def test_a_glitch_shorter_than_half_a_bit_is_not_a_start_bit():
    d = 8
    line = [1] * 10 + [0] * 2 + [1] * (12 * d) + _line([0xC3], d)[7:]
    got, errors = _run_rx(d, line)
    assert [b for _, b in got] == [0xC3] and not errors


def test_a_byte_not_taken_is_held_until_ready():
    d = 4
    dut = UartRx(d)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    line = _line([0x5E], d)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        for v in line + [1] * 30:
            ctx.set(dut.rx, v)
            await ctx.tick()
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x5E
        ctx.set(dut.o.ready, 1)
        _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
        seen.append((valid, payload))
        await ctx.tick()
        seen.append(ctx.get(dut.o.valid))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [(1, 0x5E), 0]


def test_converts_to_verilog():
    assert "module" in verilog.convert(UartRx(7), name="uart_rx")
    assert "module" in verilog.convert(UartTx(7), name="uart_tx")


@pytest.mark.parametrize("cls", [UartRx, UartTx])
@pytest.mark.parametrize("divisor", [MIN_DIVISOR - 1, 0, 4.5, True])
def test_bad_divisor_is_refused(cls, divisor):
    with pytest.raises(ValueError, match="divisor must be an integer"):
        cls(divisor)


def test_uart_divisor():
    assert uart_divisor(12_000_000, 1_000_000) == 12
    assert uart_divisor(12_000_000, 115_200) == 104
    with pytest.raises(ConfigError, match="at most 3000000 baud"):
        uart_divisor(12_000_000, 4_000_000)
    with pytest.raises(ConfigError, match="off by"):
        uart_divisor(12_000_000, 2_200_000)  # 5 cycles per bit: 2.4 Mbaud, 9 % off
    with pytest.raises(ConfigError, match="positive integer"):
        uart_divisor(12_000_000, 0)
