"""The cocotb side of a :func:`intrain.sim.runner.run_cocotb` run: clock and reset, signed
values, the run's parameters, and a driver and a monitor for Amaranth ``lib.stream`` ports.

Amaranth 0.5 flattens a stream port ``i`` of a component into three Verilog ports,
``i__payload``, ``i__valid`` and ``i__ready`` (a struct or array payload is one flat vector, its
first field in the low bits), and exports the ``sync`` domain as ``clk`` and ``rst``. Verilog
ports are unsigned: read signed values with :func:`read_signed`, write negative ones with
:func:`write_signed` (it masks them).

The driver and the monitor follow the stream rules: a transfer happens at a rising edge of the
clock where ``valid`` and ``ready`` are both high; the driver raises ``valid`` without looking at
``ready`` and holds it and the payload until the transfer. Both stall at random (``stall`` is
the probability that a cycle is idle), using Python's ``random`` module, which cocotb seeds
(``COCOTB_RANDOM_SEED``), so a failing run can be repeated. They change their signals right after
a rising edge and decide whether a transfer happens in the read-only phase before the next one,
when every combinational ``ready`` has settled.

This module is imported by the simulator's Python, not by intrain itself.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from collections.abc import Callable, Iterable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge

__all__ = [
    "test_parameters",
    "start_clock",
    "reset",
    "read_unsigned",
    "read_signed",
    "write_signed",
    "codec",
    "StreamDriver",
    "StreamMonitor",
    "assert_sequence_equal",
]

_PARAMS_ENV = "INTRAIN_TEST_PARAMS"  # intrain.sim.runner.PARAMS_ENV


def test_parameters(default: dict | None = None) -> dict:
    """The ``parameters`` given to :func:`~intrain.sim.runner.run_cocotb`, or ``default``."""
    text = os.environ.get(_PARAMS_ENV)
    if text is None:
        if default is None:
            raise RuntimeError(f"${_PARAMS_ENV} is not set: run this module with run_cocotb("
                               "..., parameters={...})")
        return dict(default)
    return json.loads(text)


test_parameters.__test__ = False  # not a pytest test


def start_clock(dut, period_ns: float = 10, clk: str = "clk"):
    """Start a clock on ``dut.<clk>``; returns its task."""
    return Clock(getattr(dut, clk), period_ns, unit="ns").start()


async def reset(dut, cycles: int = 2, clk: str = "clk", rst: str = "rst") -> None:
    """Hold ``dut.<rst>`` high for ``cycles`` rising edges, then low; returns just after the
    edge where it drops (inputs set from then on are seen at the next edge)."""
    getattr(dut, rst).value = 1
    await ClockCycles(getattr(dut, clk), cycles)
    getattr(dut, rst).value = 0


# ------------------------------------------------------------------------------------------------
# Values

def read_unsigned(handle) -> int:
    """The value of a port as an unsigned integer (raises on X or Z bits)."""
    value = handle.value
    to_unsigned = getattr(value, "to_unsigned", None)
    return to_unsigned() if to_unsigned is not None else int(value)


def read_signed(handle) -> int:
    """The value of a port read as two's complement."""
    value = handle.value
    to_signed = getattr(value, "to_signed", None)
    if to_signed is not None:
        return to_signed()
    return -int(value)  # one bit: 1 is -1


def _fit(value: int, width: int) -> int:
    if not -(1 << (width - 1)) <= value < (1 << width):
        raise ValueError(f"{value} does not fit in {width} bits")
    return value & ((1 << width) - 1)


def write_signed(handle, value: int) -> None:
    """Drive a port with ``value`` in two's complement (negative values are masked to the port's
    width; a value that fits neither signed nor unsigned raises :class:`ValueError`)."""
    handle.value = _fit(int(value), len(handle))


def _is_high(handle) -> bool:
    return str(handle.value) == "1"


def _to_python(value):
    """An Amaranth ``data.Const`` as plain Python (dict for structs, list for arrays)."""
    from amaranth.lib import data

    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [_to_python(value[i]) for i in range(layout.length)]
        return {name: _to_python(value[name]) for name, _ in layout}
    return value


def codec(shape=None, width: int | None = None) -> tuple[Callable, Callable]:
    """``(encode, decode)`` between Python values and the bits of a port of ``shape``.

    ``shape`` is anything Amaranth casts to a shape: ``signed(9)`` (encode masks negative
    values, decode reads two's complement), ``unsigned(8)`` or ``None`` (plain integers), or a
    ``data.Layout`` (encode takes what ``layout.const()`` takes, a dict, list or ``data.Const``;
    decode gives dicts and lists).
    """
    if shape is None:
        def encode(v):
            return int(v) if width is None else _fit(int(v), width)
        return encode, int

    from amaranth.hdl import Shape
    from amaranth.lib import data

    if isinstance(shape, data.Layout):
        layout = shape

        def encode(v):
            return (v if isinstance(v, data.Const) else layout.const(v)).as_bits()

        def decode(bits):
            return _to_python(layout.from_bits(bits))

        return encode, decode
    cast = Shape.cast(shape)
    n = cast.width

    def encode(v):
        return _fit(int(v), n)

    if cast.signed:
        def decode(bits):
            return bits - (1 << n) if bits >> (n - 1) & 1 else bits
    else:
        def decode(bits):
            return bits
    return encode, decode


def _port(dut, name: str, member: str, required: bool):
    full = f"{name}__{member}"
    if hasattr(dut, full):
        return getattr(dut, full)
    if required:
        raise AttributeError(f"{dut._name} has no port {full!r} (a stream port {name!r} is "
                             f"exported as {name}__payload, {name}__valid, {name}__ready)")
    return None


def _reset_handle(dut, rst):
    if rst is None:
        return None
    return getattr(dut, rst) if hasattr(dut, rst) else None


# ------------------------------------------------------------------------------------------------
# Streams

class StreamDriver:
    """Drive the stream port ``name`` of ``dut`` (an ``In(stream.Signature(...))`` port of the
    component) with queued payloads.

    Parameters
    ----------
    dut : cocotb handle
    name : str
        The port's name in the component (``"i"`` for ``i__payload``, ...).
    shape : optional
        The payload's shape, for :func:`codec`; without it payloads are integers (negative ones
        masked).
    stall : float
        Probability that a cycle with data waiting is left idle (``valid`` low).
    clk, rst : str
        Clock and reset port names; no transfer counts while reset is high.
    """

    def __init__(self, dut, name: str, *, shape=None, stall: float = 0.0, clk: str = "clk",
                 rst: str | None = "rst", rng: random.Random | None = None):
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall must be a probability below 1, not {stall!r}")
        self.payload = _port(dut, name, "payload", True)
        self.valid = _port(dut, name, "valid", False)
        self.ready = _port(dut, name, "ready", False)
        self._clk = getattr(dut, clk)
        self._rst = _reset_handle(dut, rst)
        self._encode, _ = codec(shape, width=len(self.payload))
        self.stall = stall
        self._rng = rng or random
        self._queue: deque = deque()
        self._current = None
        self._idle = Event()
        self._idle.set()
        self.sent = 0
        if self.valid is not None:
            self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def append(self, item) -> None:
        """Queue one payload."""
        self._queue.append(self._encode(item))
        self._idle.clear()

    def extend(self, items: Iterable) -> None:
        """Queue payloads."""
        for item in items:
            self.append(item)

    async def send(self, item) -> None:
        """Queue a payload and wait until every queued payload has been transferred."""
        self.append(item)
        await self.wait_idle()

    async def wait_idle(self) -> None:
        """Wait until every queued payload has been transferred."""
        await self._idle.wait()

    @property
    def idle(self) -> bool:
        return self._current is None and not self._queue

    def stop(self) -> None:
        """Stop driving (``valid`` stays as it is)."""
        self._task.cancel()

    async def _run(self):
        while True:
            await RisingEdge(self._clk)
            if self._current is None and self._queue and self._rng.random() >= self.stall:
                self._current = self._queue.popleft()
                self.payload.value = self._current
                if self.valid is not None:
                    self.valid.value = 1
            elif self._current is None and self.valid is not None:
                self.valid.value = 0
            await ReadOnly()
            if self._current is None:
                continue
            if self._rst is not None and _is_high(self._rst):
                continue
            if self.ready is None or _is_high(self.ready):
                self._current = None
                self.sent += 1
                if not self._queue:
                    self._idle.set()


class StreamMonitor:
    """Collect what comes out of the stream port ``name`` of ``dut`` (an
    ``Out(stream.Signature(...))`` port), driving its ``ready`` with random stalls.

    Every payload transferred is appended, decoded by :func:`codec` of ``shape``, to
    :attr:`received` in order.

    Parameters
    ----------
    dut : cocotb handle
    name : str
        The port's name in the component (``"o"`` for ``o__payload``, ...).
    shape : optional
        The payload's shape, for :func:`codec`; without it payloads are unsigned integers.
    stall : float
        Probability that ``ready`` is low in a cycle.
    clk, rst : str
        Clock and reset port names; no transfer counts while reset is high.
    """

    def __init__(self, dut, name: str, *, shape=None, stall: float = 0.0, clk: str = "clk",
                 rst: str | None = "rst", rng: random.Random | None = None):
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall must be a probability below 1, not {stall!r}")
        self.payload = _port(dut, name, "payload", True)
        self.valid = _port(dut, name, "valid", False)
        self.ready = _port(dut, name, "ready", False)
        self._clk = getattr(dut, clk)
        self._rst = _reset_handle(dut, rst)
        _, self._decode = codec(shape, width=len(self.payload))
        self.stall = stall
        self._rng = rng or random
        self.received: list = []
        if self.ready is not None:
            self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        """Stop collecting and leave ``ready`` as it is."""
        self._task.cancel()

    async def wait_for(self, count: int, timeout_cycles: int = 10_000) -> list:
        """Wait until :attr:`received` holds at least ``count`` payloads (raises
        :class:`AssertionError` after ``timeout_cycles`` clock cycles); returns it."""
        for _ in range(timeout_cycles):
            if len(self.received) >= count:
                return self.received
            await RisingEdge(self._clk)
        if len(self.received) >= count:
            return self.received
        raise AssertionError(f"{self.payload._name}: {len(self.received)} of {count} payloads "
                             f"after {timeout_cycles} cycles")

    async def assert_quiet(self, cycles: int = 20, expected: int | None = None) -> None:
        """Watch ``cycles`` more cycles and fail if anything beyond ``expected`` payloads
        (default: those already received) comes out."""
        expected = len(self.received) if expected is None else expected
        await ClockCycles(self._clk, cycles)
        if len(self.received) != expected:
            raise AssertionError(f"{self.payload._name}: {len(self.received)} payloads came out, "
                                 f"expected {expected}; extra: {self.received[expected:]!r}")

    async def _run(self):
        while True:
            await RisingEdge(self._clk)
            if self.ready is not None:
                self.ready.value = int(self._rng.random() >= self.stall)
            await ReadOnly()
            if self._rst is not None and _is_high(self._rst):
                continue
            if self.valid is not None and not _is_high(self.valid):
                continue
            if self.ready is not None and not _is_high(self.ready):
                continue
            self.received.append(self._decode(read_unsigned(self.payload)))


def assert_sequence_equal(got: list, expected: list, what: str = "output") -> None:
    """Assert two sequences are equal, naming the first difference and any missing or extra
    items."""
    for k, (g, e) in enumerate(zip(got, expected, strict=False)):
        if g != e:
            raise AssertionError(f"{what}[{k}] is {g!r}, expected {e!r}")
    if len(got) < len(expected):
        raise AssertionError(f"{what}: {len(got)} items, expected {len(expected)}; missing "
                             f"{expected[len(got):]!r}")
    if len(got) > len(expected):
        raise AssertionError(f"{what}: {len(got)} items, expected {len(expected)}; extra "
                             f"{got[len(expected):]!r}")
