"""A UART receiver and transmitter, 8N1: one start bit (0), eight data bits least significant
first, one stop bit (1); ``divisor`` clock cycles per bit (``clk_freq // baud``).

The host link of a board (:class:`intrain.hdl.host_link.HostLink`) talks to the host's
USB-serial bridge through them.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from intrain.errors import ConfigError

__all__ = ["UartRx", "UartTx", "uart_divisor", "MIN_DIVISOR"]

#: The smallest number of clock cycles per bit the receiver samples reliably: the start bit is
#: found through a 2-flip-flop synchronizer and sampled in its middle.
MIN_DIVISOR = 4


def uart_divisor(clk_freq: int, baud: int, tolerance: float = 0.02) -> int:
    """``clk_freq // baud``: clock cycles per bit. Raises :class:`ConfigError` when the baud rate
    is out of reach of the clock (fewer than :data:`MIN_DIVISOR` cycles per bit, or a real rate
    more than ``tolerance`` away from ``baud``)."""
    for name, value in (("clock frequency", clk_freq), ("baud rate", baud)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"the {name} must be a positive integer (Hz), not {value!r}")
    divisor = clk_freq // baud
    if divisor < MIN_DIVISOR:
        raise ConfigError(f"a {clk_freq} Hz clock cannot run a UART at {baud} baud (at least "
                          f"{MIN_DIVISOR} clock cycles per bit): use at most "
                          f"{clk_freq // MIN_DIVISOR} baud")
    error = abs(clk_freq / divisor - baud) / baud
    if error > tolerance:
        raise ConfigError(f"{baud} baud from a {clk_freq} Hz clock is off by {error:.1%} "
                          f"({clk_freq // divisor} baud); choose a rate that divides the clock")
    return divisor


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} clock cycles per "
                         f"bit, not {divisor!r}")
    return divisor


class UartRx(wiring.Component):
    """UART receiver, 8N1, ``divisor`` clock cycles per bit.

    ``rx`` goes through a 2-flip-flop synchronizer. A falling edge starts a byte; the start bit is
    sampled again half a bit later (still 0, else the edge was a glitch and is ignored), then
    every bit in its middle, ``divisor`` cycles apart. A byte whose stop bit reads 1 is presented
    on ``o``; one whose stop bit reads 0 is dropped with a one-cycle ``error`` pulse (framing
    error), and the receiver waits for the line to return to 1 (a break) before the next start
    bit. The receiver is ready for the next start bit from the middle of the stop bit on, so
    back-to-back bytes from a slightly faster sender are received.

    ``o`` holds a byte until it is taken; a byte received before then replaces it (the
    receiver never stalls the line).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Members
    -------
    rx : ``In(1)``
        The serial line (idle high), asynchronous to the clock.
    o : ``Out(stream.Signature(8))``
        The bytes received.
    error : ``Out(1)``
        One-cycle pulse: a byte with a framing error (stop bit 0) was dropped.
    """

    def __init__(self, divisor: int, *, src_loc_at=0):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "error": Out(1),
        }, src_loc_at=src_loc_at + 1)

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        tick = timer == 0
        m.d.sync += self.error.eq(0)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(~tick):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(tick):
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
                    with m.If(rx):  # a glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                with m.If(tick):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(tick):
                    with m.If(rx):
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """UART transmitter, 8N1, ``divisor`` clock cycles per bit.

    Takes a byte from ``i`` whenever it is idle (``i.ready``), and in the last cycle of a stop
    bit: bytes offered back to back leave back to back, each exactly ``10 * divisor`` cycles.
    ``tx`` comes straight from a flip-flop.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Members
    -------
    i : ``In(stream.Signature(8))``
        The bytes to send.
    tx : ``Out(1)``
        The serial line (idle high).
    """

    def __init__(self, divisor: int, *, src_loc_at=0):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        }, src_loc_at=src_loc_at + 1)

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        timer = Signal(range(d))
        bit = Signal(range(10))
        shreg = Signal(9)  # the data bits, then the stop bit
        busy = Signal()
        tick = timer == 0
        # Ready while idle, and in the last cycle of a stop bit: the next start bit follows it.
        m.d.comb += self.i.ready.eq(~busy | (tick & (bit == 9)))
        with m.If(self.i.ready & self.i.valid):
            m.d.sync += [self.tx.eq(0), shreg.eq(Cat(self.i.payload, 1)), timer.eq(d - 1),
                         bit.eq(0), busy.eq(1)]
        with m.Elif(~busy):
            pass
        with m.Elif(~tick):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(bit == 9):  # the stop bit has lasted its full time
            m.d.sync += busy.eq(0)
        with m.Else():
            m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1), timer.eq(d - 1),
                         bit.eq(bit + 1)]
        return m
