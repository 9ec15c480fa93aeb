"""The top level of a board's design: the PLL makes the ``sync`` clock, the engine's
:class:`~intrain.hdl.host_link.HostLink` sits on the board's UART pins, and an LED shows
``busy``."""

from __future__ import annotations

from amaranth import ClockDomain, Elaboratable, Module
from amaranth.lib import io

from intrain.config import Config

from .pll import Pll, PllSettings, pll_settings
from .registry import get_board

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """A board's whole design.

    Parameters
    ----------
    board : Board or str
    config : Config
        The engine's configuration.
    clock_hz : float
        The requested clock; the PLL makes the nearest frequency it can (:attr:`clock_hz` after
        construction is the achieved one, which the UART divisor is computed from).
    baud : int
        The UART's bits per second.
    link : callable, optional
        ``link(config, clk_freq=, baud=, dsp=)`` builds the component on the UART (with
        ``rx``, ``tx`` and ``busy``); :class:`~intrain.hdl.host_link.HostLink` by default.
    """

    def __init__(self, board, config: Config, *, clock_hz: float, baud: int = 1_000_000,
                 link=None):
        self.board = get_board(board)
        self.config = config
        self.pll: PllSettings = pll_settings(self.board.family, self.board.clock_hz / 1e6,
                                             clock_hz / 1e6)
        self.clock_hz = self.pll.out_mhz * 1e6
        self.baud = baud
        self.dsp = self.board.dsp
        if link is None:
            from intrain.hdl.host_link import HostLink
            link = HostLink
        self.link = link(config, clk_freq=int(round(self.clock_hz)), baud=baud, dsp=self.dsp)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        board = self.board
        clk = platform.request(board.clock_resource, 0, dir="-")
        if board.family == "ice40":
            # SB_PLL40_PAD takes the clock straight from its pin (no input buffer).
            pll = m.submodules.pll = Pll(self.pll, pad=clk.io)
        else:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk)
            pll = m.submodules.pll = Pll(self.pll)
            m.d.comb += pll.clk_in.eq(clk_buf.i)

        m.submodules.link = link = self.link
        uart = platform.request(board.uart, 0, dir="-")
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [link.rx.eq(rx.i), tx.o.eq(link.tx)]
        led = platform.request(board.led, 0, dir="-")
        m.submodules.led_buf = led_buf = io.Buffer("o", led.g if hasattr(led, "g") else led)
        # Registered: a LED driven straight from ``busy`` pulled that signal's logic toward the
        # pin, and its route back to the link was the OrangeCrab's critical path (11.8 ns).
        m.d.sync += led_buf.o.eq(link.busy)
        return m
