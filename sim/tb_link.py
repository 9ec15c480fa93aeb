"""cocotb testbench of a board's top level, :class:`~intrain.hdl.host_link.HostLink`: the host
driver of :mod:`intrain.boards.host` talks to it through a simulated UART, bit by bit on ``rx``
and ``tx``, with the same protocol client as over a serial port.

Parameters (:func:`~intrain.sim.cocotb_helpers.test_parameters`):

``config``
    The :class:`~intrain.config.Config` as a dict.
``divisor``, ``clk_freq``, ``timeout``
    The UART's clock cycles per bit, the clock frequency the design was built for (the
    testbench's clock has that period) and the link's inter-byte timeout in cycles.
``data``, ``steps``, ``float_baseline``, ``evaluate_on_rtl``, ``report``
    As for :mod:`intrain.sim.tb_engine` (test ``train_over_uart``).
``verify_load``
    Read the initial weights back after loading them (default); without it, the first step's
    CRCs check them (for benchmarks of the steps alone).

Tests:

``train_over_uart``
    Training through :class:`~intrain.sim.tb_engine.RtlTrainer` over the link, every step
    compared with the golden model; the report gets the link's statistics, and per training
    step (``link["steps"]``) its simulated seconds, frames and bytes each way.
``bad_frames_are_rejected``
    Damaged, truncated, oversized and unknown frames, bytes outside a frame, bad run arguments,
    ``WRITE_ROWS`` without values, to another matrix, down a column, from another column or past
    the matrix's end, and requests while the engine runs: each is answered with its error code,
    and the engine's weights, input and labels are unchanged after each; then good frames still
    work (``WRITE_ROWS`` of whole rows, a row cut short and labels read back as sent).
``serve_pty``
    The design behind a pseudo-terminal (``pty_file``, ``stop_file``): a host process opens it
    with pyserial, as it would open a board's serial port.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

from intrain.boards import protocol as proto
from intrain.boards.host import LinkTransport, ProtocolClient, expected_info
from intrain.boards.protocol import Command, LinkError, Status
from intrain.config import Config
from intrain.hdl.engine import Engine, EngineGeometry, HostTarget
from intrain.sim.cocotb_helpers import reset, start_clock, test_parameters
from intrain.sim.engine_host import EngineHost
from intrain.sim.tb_engine import RtlTrainer, _train, compare

__all__ = ["CocotbUartLink"]


class CocotbUartLink:
    """A byte link (see :mod:`intrain.boards.host`) over the design's UART pins: cocotbext-uart's
    ``UartSource`` drives ``rx`` and its ``UartSink`` decodes ``tx``, 8N1 at
    ``clk_freq / divisor`` baud. Timeouts are in simulated seconds.

    The UART models of cocotbext-uart time their bits with ``Timer`` (whole nanoseconds: exact
    for the tests' 40 ns bits, 0.1 % short at 3 Mbaud) instead of counting clock edges; their
    per-byte log lines are silenced. The sink does not check stop bits: a framing error of the
    design shows as a damaged answer (a bad CRC) to the protocol client.
    """

    def __init__(self, dut, divisor: int, clk_freq: int, *, rx: str = "rx", tx: str = "tx"):
        rx_pin, tx_pin = getattr(dut, rx), getattr(dut, tx)
        for pin in (rx_pin, tx_pin):
            logging.getLogger(f"cocotb.{pin._path}").setLevel(logging.WARNING)
        baud = clk_freq / divisor
        self.divisor = divisor
        self.seconds_per_byte = 10 / baud
        self._source = UartSource(rx_pin, baud=baud, bits=8, stop_bits=1)
        self._sink = UartSink(tx_pin, baud=baud, bits=8, stop_bits=1)

    async def send(self, data: bytes) -> None:
        """Send ``data``; returns when its last stop bit has been sent."""
        await self._source.write(bytes(data))
        await self._source.wait()

    def take(self) -> bytes:
        """Every byte received and not yet taken."""
        return bytes(self._sink.read_nowait())

    async def recv(self, n: int, timeout: float) -> bytes:
        deadline = get_sim_time("ns") + timeout * 1e9
        out = bytearray()
        while True:
            out += self._sink.read_nowait(min(n - len(out), self._sink.count()))
            left = deadline - get_sim_time("ns")
            if len(out) >= n or left <= 0:
                return bytes(out)
            await self._sink.wait(int(left) + 1, "ns")

    def discard(self) -> None:
        self._sink.clear()


def _start_clock(dut, clk_freq: int) -> None:
    """The design's clock at ``clk_freq``, its period rounded to an even number of picoseconds
    (the simulator's precision; 54 MHz runs at 54.0011 MHz)."""
    start_clock(dut, period_ns=2 * round(1e12 / clk_freq / 2) / 1000)


async def _connect(dut, params):
    config = Config.from_dict(params["config"])
    clk_freq = params["clk_freq"]
    _start_clock(dut, clk_freq)
    link = CocotbUartLink(dut, params["divisor"], clk_freq)
    await reset(dut)
    await ClockCycles(dut.clk, 4)
    # Answers may come after the link's inter-byte timeout (truncated frames): wait twice that.
    client = ProtocolClient(link, timeout=2 * params["timeout"] / clk_freq + 1e-6)
    transport = LinkTransport(client)
    info = await transport.connect(expected_info(config),
                                   n_crcs=len(EngineGeometry(config).crc_tensors))
    assert info.clk_freq == clk_freq, info
    return config, link, client, transport


class TimedTrainer(RtlTrainer):
    """:class:`RtlTrainer` that records each training step's simulated seconds and its traffic
    (``step_records``): the step's host transfers, run and check, the golden model aside."""

    def __init__(self, host, config, client):
        super().__init__(host, config)
        self.client = client
        self.step_records: list[dict] = []

    async def _train_step(self, a0, labels, lam):
        t0, before = get_sim_time("ns"), self.client.stats.to_dict()
        result = await super()._train_step(a0, labels, lam)
        after = self.client.stats.to_dict()
        record = {k: after[k] - before[k] for k in ("frames", "bytes_sent", "bytes_received")}
        record["sim_seconds"] = (get_sim_time("ns") - t0) * 1e-9
        self.step_records.append(record)
        return result


@cocotb.test()
async def train_over_uart(dut):
    """Train through the UART; every step equals the golden model's."""
    params = test_parameters()
    config, link, client, transport = await _connect(dut, params)
    trainer = TimedTrainer(EngineHost(EngineGeometry(config), transport), config, client)
    if params.get("verify_load", True):
        await trainer.load()
    else:
        await trainer.host.load_weights(trainer.golden.weights)
    result = await bridge(_train)(trainer, config, params)
    result["link"] = {**client.stats.to_dict(), "steps": trainer.step_records}
    if params.get("report"):
        Path(params["report"]).write_text(json.dumps(result, indent=2) + "\n")
    dut._log.info("%d steps bit-exact over the UART: %s", trainer.steps, result["link"])


@cocotb.test()
async def bad_frames_are_rejected(dut):
    """Every bad frame gets its error code and changes nothing."""
    params = test_parameters()
    config, link, client, transport = await _connect(dut, params)
    info = transport.info
    engine = Engine(config)
    host = EngineHost(engine, transport)
    rng = np.random.default_rng(1)
    weights = [rng.integers(-p.w_max, p.w_max + 1, (p.n_out, p.n_in)) for p in config.plan]
    a0 = rng.integers(-(1 << (config.input_bits - 1)), 1 << (config.input_bits - 1),
                      (config.batch_size, config.layers[0]))
    labels = rng.integers(0, config.layers[-1], (config.batch_size, 1))
    await host.load_weights(weights)
    await host.write_matrix(HostTarget.ACTIVATIONS, 0, a0)
    await host.write_matrix(HostTarget.LABELS, 0, labels)

    async def unchanged(what):
        for layer, (w, g) in enumerate(zip(weights, await host.read_weights()), start=1):
            compare(0, f"W{layer}", w, g)
        compare(0, "A0", a0, await host.read_matrix(HostTarget.ACTIVATIONS, 0, *a0.shape))
        compare(0, "LABELS", labels, await host.read_matrix(HostTarget.LABELS, 0, *labels.shape))
        dut._log.info("rejected, nothing changed: %s", what)

    async def expect(frame, status, what):
        got, payload = await client.exchange(frame)
        assert got == status, f"{what}: answered {got.name}, expected {status.name}"
        assert payload == b"", f"{what}: an error answer carries no data"
        assert dut.error.value == 1, f"{what}: the error output is low"
        await unchanged(what)

    # A WRITE of other weights into every row of W1: harmful if it ever landed.
    p1 = config.plan[0]
    other = np.where(weights[0] == p1.w_max, -p1.w_max, p1.w_max)
    words = [host._writer.pack(HostTarget.WEIGHTS, 1, 0, r, c,
                               list(other[r, c:c + engine.lanes])
                               + [0] * (engine.lanes - len(other[r, c:c + engine.lanes])),
                               (1 << len(other[r, c:c + engine.lanes])) - 1)
             for r in range(p1.n_out) for c in range(0, p1.n_in, engine.lanes)]
    per = info.max_payload // info.write_bytes
    payload = proto.pack_words(words[:per], info.write_bytes)
    good = proto.encode_request(Command.WRITE, payload)

    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01
    await expect(bytes(bad_crc), Status.BAD_CRC, "WRITE with a wrong CRC")
    flipped = bytearray(good)
    flipped[proto.HEADER_BYTES + len(payload) // 2] ^= 0x40
    await expect(bytes(flipped), Status.BAD_CRC, "WRITE with a flipped payload byte")
    bad_cmd = bytearray(good)
    bad_cmd[3] = Command.READ
    await expect(bytes(bad_cmd), Status.BAD_CRC, "WRITE frame with its command byte changed")
    await expect(proto.encode_request(Command.WRITE, payload[:-1]), Status.BAD_LENGTH,
                 "WRITE of a partial word (right CRC)")
    await expect(proto.encode_request(Command.INFO, b"\x00"), Status.BAD_LENGTH,
                 "INFO with a payload")
    await expect(proto.encode_request(Command.RUN, b"\x01\x00\x00"), Status.BAD_LENGTH,
                 "RUN with 3 bytes")
    await expect(proto.encode_request(0x7E, payload), Status.UNKNOWN_COMMAND,
                 "unknown command 0x7E")
    await expect(proto.encode_request(0x00), Status.UNKNOWN_COMMAND, "command 0x00")
    await expect(good[:len(good) // 2], Status.TRUNCATED, "first half of a WRITE")
    await expect(good[:2], Status.TRUNCATED, "SYNC and one length byte")
    await expect(good[:-1], Status.TRUNCATED, "WRITE without its last CRC byte")
    # LENGTH above the buffer: the rest is dropped until the line is quiet.
    big = bytearray(good)
    big[1:3] = (info.max_payload + 1).to_bytes(2, "little")
    await expect(bytes(big), Status.BAD_LENGTH, "LENGTH above max_payload")
    # LENGTH one short: the CRC check lands on the last payload byte and the first CRC byte;
    # the last byte arrives while the board answers, and is dropped.
    short = bytearray(good)
    short[1:3] = (len(payload) - 1).to_bytes(2, "little")
    await expect(bytes(short), Status.BAD_CRC, "LENGTH one byte short")
    assert await link.recv(1, client.timeout) == b"", "a second answer to one frame"
    await expect(b"\x00\x11\x22", Status.BAD_SYNC, "bytes outside a frame")
    await expect(b"\x00\x11" + good, Status.BAD_SYNC, "bytes before a frame, no pause")
    await _bad_rows_frames(host, expect, a0)
    # Runs: a batch of 0 or above batch_size is refused.
    for batch in (0, config.batch_size + 1):
        await expect(proto.encode_request(Command.RUN, proto.run_payload(batch, True, 0)),
                     Status.BAD_ARGUMENT, f"RUN of batch {batch}")
    # While the engine runs (a training step started without waiting), WRITE, READ and RUN are
    # BUSY; COUNTERS waits for the end. A training step changes the weights, not A0: the WRITE
    # goes to A0.
    b = config.batch_size
    step_cycles = engine.train_cycles(b)
    line = 10 * params["divisor"]
    write_a0 = proto.encode_request(Command.WRITE, proto.pack_words([host._writer.pack(
        HostTarget.ACTIVATIONS, 0, 0, 0, 0, [1] * engine.lanes, (1 << engine.lanes) - 1)],
        info.write_bytes))
    read_1 = proto.encode_request(Command.READ, proto.pack_words([0], info.request_bytes))
    run_1 = proto.encode_request(Command.RUN, proto.run_payload(1, True, 0))
    steps = 0
    rows_a0 = proto.encode_request(Command.WRITE_ROWS, proto.rows_payload(
        host._reader.pack(HostTarget.ACTIVATIONS, 0, 0, 0, 0), [1] * config.layers[0], info))
    for frame, what in ((write_a0, "WRITE"), (rows_a0, "WRITE_ROWS"), (read_1, "READ"),
                        (run_1, "RUN")):
        # The run must outlast its own answer and the whole next frame.
        assert step_cycles > (len(frame) + 6) * line, "make the test's batch larger"
        await client.run(b, True, 0, wait=False)
        assert dut.busy.value == 1, "the busy output is low while the engine runs"
        steps += 1
        got, _ = await client.exchange(frame)
        assert got == Status.BUSY, f"{what} while the engine runs: answered {got.name}"
        counters = await client.counters(wait=step_cycles / params["clk_freq"])
        assert counters["cycles"] == step_cycles and counters["steps"] == steps, counters
        got = await host.read_matrix(HostTarget.ACTIVATIONS, 0, *a0.shape)
        compare(0, "A0", a0, got)
        dut._log.info("rejected, A0 unchanged: %s while the engine runs", what)
    # COUNTERS of an idle engine answer at once; RUN with wait answers the same counters.
    assert await client.counters() == counters
    ran = await client.run(b, False, 0, seconds=1e-3)
    assert ran["cycles"] == engine.forward_cycles(b) and ran["steps"] == steps, ran
    # And a good frame still works: W1 becomes `other`.
    await host.write_matrix(HostTarget.WEIGHTS, 1, other)
    assert dut.error.value == 0, "the error output stays high after a good frame"
    compare(0, "W1", other, (await host.read_weights())[0])
    try:
        await client.request(Command.WRITE, payload[:-1])
    except LinkError as e:
        assert e.status == Status.BAD_LENGTH and "BAD_LENGTH" in str(e)
    else:
        raise AssertionError("a bad WRITE raised nothing")
    dut._log.info("link statistics: %s", client.stats)
    await _good_rows_frames(dut, host, a0, labels)


def _rows_frame(host, target, layer, values, *, row=0, mode=0, col=0):
    info = host.transport.info
    request = host._reader.pack(target, layer, mode, row, col)
    return proto.encode_request(Command.WRITE_ROWS, proto.rows_payload(request, values, info))


async def _bad_rows_frames(host, expect, a0):
    """``WRITE_ROWS`` frames that must be rejected: each would change A0 or the labels."""
    config, info = host.config, host.transport.info
    b, n_in, A, L = config.batch_size, config.layers[0], HostTarget.ACTIVATIONS, HostTarget.LABELS
    other = -a0 - 1
    request = host._reader.pack(A, 0, 0, 0, 0)
    await expect(proto.encode_request(Command.WRITE_ROWS, proto.pack_words(
        [request], info.request_bytes)), Status.BAD_LENGTH, "WRITE_ROWS without values")
    await expect(proto.encode_request(Command.WRITE_ROWS, b"\x01"), Status.BAD_LENGTH,
                 "WRITE_ROWS with a partial request")
    if info.value_bytes > 1:
        payload = proto.rows_payload(request, other[0], info)[:-1]
        await expect(proto.encode_request(Command.WRITE_ROWS, payload), Status.BAD_LENGTH,
                     "WRITE_ROWS with a partial value")
    for target, layer, what in ((HostTarget.WEIGHTS, 1, "W1"), (A, 1, "A1"),
                                (HostTarget.PREDICTIONS, 0, "P"), (HostTarget.ERRORS, 1, "E1"),
                                (L, 1, "LABELS of layer 1")):
        await expect(_rows_frame(host, target, layer, [0] * n_in), Status.BAD_ARGUMENT,
                     f"WRITE_ROWS to {what}")
    await expect(_rows_frame(host, A, 0, other[0], mode=1), Status.BAD_ARGUMENT,
                 "WRITE_ROWS down a column")
    await expect(_rows_frame(host, A, 0, other[0, 1:], col=1), Status.BAD_ARGUMENT,
                 "WRITE_ROWS from column 1")
    await expect(_rows_frame(host, A, 0, other[0], row=b), Status.BAD_ARGUMENT,
                 "WRITE_ROWS from the row past the last")
    await expect(_rows_frame(host, A, 0, other[b - 2:].ravel().tolist() + [0], row=b - 2),
                 Status.BAD_ARGUMENT, "WRITE_ROWS one value past the matrix")
    await expect(_rows_frame(host, L, 0, [1] * 4, row=b - 3), Status.BAD_ARGUMENT,
                 "WRITE_ROWS of labels one past the last")


async def _good_rows_frames(dut, host, a0, labels):
    """``WRITE_ROWS`` that land: whole rows up to the last, a row cut short, the labels."""
    config = host.config
    b, n_in, A, L = config.batch_size, config.layers[0], HostTarget.ACTIVATIONS, HostTarget.LABELS
    rng = np.random.default_rng(2)
    half = 1 << (config.input_bits - 1)
    new = rng.integers(-half, half, a0.shape)
    for frame in (_rows_frame(host, A, 0, new[b - 3:], row=b - 3),
                  _rows_frame(host, A, 0, new[1:3].ravel()[:n_in + 3], row=1),
                  _rows_frame(host, L, 0, [config.layers[-1] - 1] * 3, row=b - 3)):
        status, _ = await host.transport.client.exchange(frame)
        assert status == Status.OK, f"a good WRITE_ROWS answered {status.name}"
    expect_a0, expect_labels = a0.copy(), labels.copy()
    expect_a0[b - 3:] = new[b - 3:]
    expect_a0[1] = new[1]
    expect_a0[2, :3] = new[2, :3]
    expect_labels[b - 3:] = config.layers[-1] - 1
    compare(0, "A0", expect_a0, await host.read_matrix(A, 0, *a0.shape))
    compare(0, "LABELS", expect_labels, await host.read_matrix(L, 0, *labels.shape))
    dut._log.info("WRITE_ROWS: whole rows, a short row and labels landed")


@cocotb.test()
async def serve_pty(dut):
    """The design behind a pseudo-terminal: the host driver opens the terminal named in the file
    ``pty_file`` as a serial port (pyserial) and talks to the simulated board as to a real one;
    the test ends when the file ``stop_file`` appears (or after ``serve_seconds`` of real
    time)."""
    import os
    import time
    import tty

    params = test_parameters()
    clk_freq = params["clk_freq"]
    _start_clock(dut, clk_freq)
    link = CocotbUartLink(dut, params["divisor"], clk_freq)
    await reset(dut)
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    Path(params["pty_file"]).write_text(os.ttyname(slave))
    stop = Path(params["stop_file"])
    deadline = time.monotonic() + params.get("serve_seconds", 600)
    polls = 0
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                await link.send(data)
            else:
                await ClockCycles(dut.clk, 100)
            answer = link.take()
            if answer:
                os.write(master, answer)
            polls += 1
            if polls % 64 == 0 and stop.exists():
                break
    finally:
        os.close(master)
        os.close(slave)
