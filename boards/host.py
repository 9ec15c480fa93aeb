"""The host side of a board's link: the protocol of :mod:`intrain.boards.protocol` over any byte
stream, the engine's transport on top of it, and training on a board.

Layers, bottom up:

- a *byte link*: ``async send(data)``, ``async recv(n, timeout) -> bytes`` (at most ``n``
  bytes; fewer when ``timeout`` seconds pass first), ``discard()`` (drop what has arrived) and
  ``seconds_per_byte``. :class:`SerialLink` is a serial port (pyserial); the cocotb testbench
  :mod:`intrain.sim.tb_link` offers a simulated UART with the same methods, its timeouts in
  simulated seconds;
- :class:`ProtocolClient`: requests and answers, with :class:`LinkStats`; an error answer, no
  answer or a damaged answer raises :class:`~intrain.boards.protocol.LinkError`;
- :class:`LinkTransport`: the transport of :class:`~intrain.sim.engine_host.EngineHost`
  (``write``, ``read``, ``run``), words cut into frames of at most the board's ``max_payload``;
  :class:`SerialTransport` is one over a serial port;
- :func:`train_on_board`: :func:`intrain.train.train` through
  :class:`~intrain.sim.tb_engine.RtlTrainer` on a board, every step checked against the golden
  model as in simulation;
- :func:`step_traffic`: the model of a training step's time on the link (the frames the driver
  sends and receives, the engine's cycles, the board's turnaround).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass

from intrain.boards import protocol as proto
from intrain.boards.protocol import BoardInfo, Command, FrameError, LinkError, Status
from intrain.config import Config

__all__ = ["SerialLink", "LinkStats", "ProtocolClient", "LinkTransport", "SerialTransport",
           "host_geometry", "expected_info", "StepTraffic", "step_traffic", "train_on_board"]


# ------------------------------------------------------------------------------------------------
# Byte links

class SerialLink:
    """A serial port as a byte link (pyserial, 8N1).

    Raises :class:`LinkError` with a one-line message when the port cannot be opened.
    """

    def __init__(self, port: str, baud: int):
        import serial

        if isinstance(baud, bool) or not isinstance(baud, int) or baud < 1:
            raise LinkError(f"the baud rate must be a positive integer, not {baud!r}")
        self.port = port
        self.baud = baud
        self.seconds_per_byte = 10 / baud
        try:
            self.serial = serial.Serial(port, baud, timeout=0.1, write_timeout=10)
        except (serial.SerialException, OSError, ValueError) as e:
            reason = str(e).split(": ", 1)[-1] if isinstance(e, serial.SerialException) else e
            raise LinkError(f"cannot open serial port {port}: {reason}") from None

    async def send(self, data: bytes) -> None:
        import serial

        try:
            self.serial.write(data)
            self.serial.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot write to serial port {self.port}: {e}") from None

    async def recv(self, n: int, timeout: float) -> bytes:
        import serial

        try:
            self.serial.timeout = timeout
            return bytes(self.serial.read(n))
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot read from serial port {self.port}: {e}") from None

    def discard(self) -> None:
        self.serial.reset_input_buffer()

    def close(self) -> None:
        self.serial.close()


# ------------------------------------------------------------------------------------------------
# The protocol

@dataclass
class LinkStats:
    """What went over the link: frames, bytes each way, error answers, and the seconds spent
    waiting for answers."""

    frames: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    errors: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class ProtocolClient:
    """Requests to a board and its answers over a byte link.

    Parameters
    ----------
    link
        The byte link.
    timeout : float
        Seconds an answer may take beyond the time its bytes need on the line (and beyond the
        board's own inter-byte timeout, after which it answers a truncated frame).
    """

    def __init__(self, link, *, timeout: float = 0.5):
        self.link = link
        self.timeout = timeout
        self.stats = LinkStats()

    def _line_seconds(self, nbytes: int) -> float:
        return nbytes * self.link.seconds_per_byte

    async def exchange(self, frame: bytes, *, answer_bytes: int = 0,
                       wait: float = 0.0) -> tuple[Status, bytes]:
        """Send ``frame`` (any bytes) and return the board's answer, ``(status, payload)``,
        whatever the status. ``answer_bytes`` (the payload expected) and ``wait`` (seconds the
        board needs before it answers, such as a run) lengthen the timeout."""
        t0 = time.perf_counter()
        await self.link.send(frame)
        self.stats.bytes_sent += len(frame)
        self.stats.frames += 1
        timeout = self.timeout + wait + self._line_seconds(
            len(frame) + proto.HEADER_BYTES + answer_bytes + proto.CRC_BYTES)
        head = await self.link.recv(proto.HEADER_BYTES, timeout)
        self.stats.bytes_received += len(head)
        if len(head) < proto.HEADER_BYTES:
            self.stats.seconds += time.perf_counter() - t0
            raise LinkError(
                f"no answer from the board in {timeout:.3g} s"
                + (f" ({len(head)} of a header's {proto.HEADER_BYTES} bytes)" if head else "")
                + ": is it programmed with this configuration's bitstream, and is the baud "
                "rate right?")
        if head[0] != proto.SYNC:
            self.link.discard()
            raise LinkError(f"the board's answer does not start with SYNC ({head.hex()}): "
                             "wrong baud rate or wrong device?")
        length = int.from_bytes(head[1:3], "little")
        rest = await self.link.recv(length + proto.CRC_BYTES,
                                    self.timeout + self._line_seconds(length + 2))
        self.stats.bytes_received += len(rest)
        self.stats.seconds += time.perf_counter() - t0
        try:
            command, payload = proto.decode_frame(head + rest)
        except FrameError as e:
            self.link.discard()
            raise LinkError(f"damaged answer from the board: {e}") from None
        if not command & proto.RESPONSE or (command & 0x7F) not in set(Status):
            raise LinkError(f"the board answered with an unknown code {command:#04x}")
        status = Status(command & 0x7F)
        if status != Status.OK:
            self.stats.errors += 1
        return status, payload

    async def request(self, command: Command, payload: bytes = b"", *, answer_bytes: int = 0,
                      wait: float = 0.0) -> bytes:
        """Send a request; the answer's payload, of exactly ``answer_bytes`` bytes. An error
        answer raises :class:`LinkError` (its :attr:`~LinkError.status` set), as does an answer
        of another size."""
        status, data = await self.exchange(proto.encode_request(command, payload),
                                           answer_bytes=answer_bytes, wait=wait)
        if status != Status.OK:
            raise LinkError(f"the board rejected {command.name} ({len(payload)} bytes): "
                             f"{status.name}, {proto.STATUS_TEXT[status]}", status)
        if len(data) != answer_bytes:
            raise LinkError(f"damaged answer from the board: {len(data)} bytes of data for "
                            f"{command.name}, not {answer_bytes}")
        return data

    async def info(self) -> BoardInfo:
        return BoardInfo.from_bytes(await self.request(Command.INFO,
                                                       answer_bytes=proto.INFO_BYTES))

    #: Tensor CRCs that follow the counters in the board's answers (set by
    #: :meth:`LinkTransport.connect` from the board's configuration).
    n_crcs = 0

    async def counters(self, wait: float = 0.0) -> dict:
        """The engine's counters, once it is idle, and its tensor CRCs (``crcs``)."""
        n = proto.counters_bytes(self.n_crcs)
        return proto.parse_counters(await self.request(Command.COUNTERS, answer_bytes=n,
                                                       wait=wait), self.n_crcs)

    async def run(self, batch: int, train: bool, lam: int, *, wait: bool = True,
                  seconds: float = 0.0) -> dict | None:
        """Start a run; with ``wait``, its counters and tensor CRCs (``seconds``: how long it
        may take)."""
        data = await self.request(Command.RUN, proto.run_payload(batch, train, lam, wait),
                                  answer_bytes=proto.counters_bytes(self.n_crcs) if wait else 0,
                                  wait=seconds)
        return proto.parse_counters(data, self.n_crcs) if wait else None


# ------------------------------------------------------------------------------------------------
# The engine's transport

def host_geometry(config: Config):
    """The engine's geometry (:class:`~intrain.hdl.engine.EngineGeometry`): its host layouts
    and sizes, all the host side needs."""
    from intrain.hdl.engine import EngineGeometry

    return EngineGeometry(config)


def expected_info(config: Config) -> BoardInfo:
    """The :class:`BoardInfo` fields a board built for ``config`` reports (``max_payload`` and
    ``clk_freq`` are the board's own and left 0)."""
    return BoardInfo.for_engine(host_geometry(config), max_payload=0, clk_freq=0)


class LinkTransport:
    """The transport of :class:`~intrain.sim.engine_host.EngineHost` over a
    :class:`ProtocolClient`: ``write``, ``read`` and ``run`` as the simulated engine's
    :class:`~intrain.sim.engine_host.CocotbTransport` offers them. Call :meth:`connect` first."""

    def __init__(self, client: ProtocolClient):
        self.client = client
        self.info: BoardInfo | None = None

    @property
    def stats(self) -> LinkStats:
        return self.client.stats

    async def connect(self, expected: BoardInfo | None = None, n_crcs: int = 0) -> BoardInfo:
        """Ask the board what it is; with ``expected``, refuse a board built for another
        configuration (:class:`LinkError`). ``n_crcs``: the tensor CRCs its runs answer with
        (``len(EngineGeometry.crc_tensors)`` of its configuration)."""
        info = await self.client.info()
        why = expected is not None and info.mismatch(expected)
        if not why and min(info.write_bytes, info.request_bytes, info.data_bytes,
                           info.value_bytes) == 0:
            why = "the board reports a word of 0 bytes"
        if not why and info.max_payload < max(info.write_bytes, info.request_bytes):
            why = f"the board's frames hold {info.max_payload} bytes, less than one word"
        if why:
            raise LinkError(why)
        self.info = info
        self.client.n_crcs = n_crcs
        return info

    def _info(self) -> BoardInfo:
        if self.info is None:
            raise RuntimeError("connect() first")
        return self.info

    async def write(self, words: list[int]) -> None:
        info = self._info()
        per = info.max_payload // info.write_bytes
        for s in range(0, len(words), per):
            await self.client.request(Command.WRITE,
                                      proto.pack_words(words[s:s + per], info.write_bytes))

    async def write_rows(self, matrix, request) -> bool:
        """The rows of ``matrix`` (rows x cols integers, the input or the labels) as bare
        values: ``WRITE_ROWS`` frames of as many whole rows as ``max_payload`` holds.
        ``request(row)`` is the packed ``host_read`` request of row ``row``'s first slice.
        False, and nothing sent, when not even one row fits a frame."""
        info = self._info()
        rows, cols = matrix.shape
        per = (info.max_payload - info.request_bytes) // (cols * info.value_bytes)
        if per < 1:
            return False
        for r in range(0, rows, per):
            await self.client.request(Command.WRITE_ROWS,
                                      proto.rows_payload(request(r), matrix[r:r + per], info))
        return True

    async def read(self, words: list[int]) -> list[int]:
        info = self._info()
        per = info.max_payload // info.request_bytes
        out: list[int] = []
        for s in range(0, len(words), per):
            chunk = words[s:s + per]
            data = await self.client.request(
                Command.READ, proto.pack_words(chunk, info.request_bytes),
                answer_bytes=len(chunk) * info.data_bytes)
            out += proto.unpack_words(data, info.data_bytes)
        return out

    async def run(self, batch: int, train: bool, lam: int, limit: int | None = None) -> dict:
        info = self._info()
        seconds = (limit or 0) / info.clk_freq if info.clk_freq else 1.0
        return await self.client.run(batch, train, lam, seconds=seconds)


class SerialTransport(LinkTransport):
    """:class:`LinkTransport` over a serial port (``port``, ``baud``; ``timeout``: seconds an
    answer may take beyond its time on the line)."""

    def __init__(self, port: str, baud: int, *, timeout: float = 0.5):
        self.link = SerialLink(port, baud)
        super().__init__(ProtocolClient(self.link, timeout=timeout))

    def close(self) -> None:
        self.link.close()


# ------------------------------------------------------------------------------------------------
# The link's time per step

@dataclass(frozen=True)
class StepTraffic:
    """What one training step checked by the engine's CRCs moves over the link, as
    :class:`~intrain.host.checked.CheckedTrainer` drives it through :class:`LinkTransport`
    (:func:`step_traffic`): the batch's inputs and labels as bare values in ``WRITE_ROWS``
    frames of as many whole rows as ``max_payload`` holds (in ``WRITE`` frames of
    ``host_write`` words for a matrix whose row does not fit a frame), one ``RUN``, and the
    answers (empty for the uploads; the counters and tensor CRCs for ``RUN``). No read-back: the
    CRCs matched.

    Attributes
    ----------
    frames : int
        Request frames (each gets one answer frame).
    bytes_sent, bytes_received : int
        Bytes each way, frame headers and CRCs included.
    link_cycles : int
        Clock cycles the board's link spends between the end of a request and the start of its
        answer, over all frames, the engine's run aside (:class:`~intrain.hdl.host_link.HostLink`):
        a cycle to check each frame; for each word of a ``WRITE`` two per byte from the buffer
        and one to hand it to the engine; for a ``WRITE_ROWS``, its request loaded as a word
        (two per ``write_bytes``) and checked (one), two per value byte, one per masked-off
        lane of a row's last slice and one per slice handed to the engine.
    engine_cycles : int
        The training step's cycles (the geometry's cycle model).
    """

    frames: int
    bytes_sent: int
    bytes_received: int
    link_cycles: int
    engine_cycles: int

    def seconds(self, baud: float, clk_freq: float) -> dict:
        """The step's time at ``baud`` (10 bits a byte, 8N1) and ``clk_freq`` Hz: ``line``
        (both directions, one after the other: the host waits for each answer), ``engine``,
        ``turnaround`` (``link_cycles``), their sum ``step`` and ``steps_per_second``."""
        line = 10 * (self.bytes_sent + self.bytes_received) / baud
        engine = self.engine_cycles / clk_freq
        turnaround = self.link_cycles / clk_freq
        step = line + engine + turnaround
        return {"line": line, "engine": engine, "turnaround": turnaround, "step": step,
                "steps_per_second": 1 / step}


def _upload(info: BoardInfo, lanes: int, rows: int, cols: int,
            max_payload: int) -> tuple[int, int, int]:
    """``(frames, payload bytes, link cycles)`` of a ``rows x cols`` matrix sent as
    :meth:`LinkTransport.write_rows` sends it, or as ``WRITE`` words where a row does not fit a
    frame (:meth:`~intrain.host.driver.EngineHost.write_matrix`)."""
    slices = math.ceil(cols / lanes)
    per = (max_payload - info.request_bytes) // (cols * info.value_bytes)
    if per < 1:
        words = rows * slices
        frames = math.ceil(words / (max_payload // info.write_bytes))
        return frames, words * info.write_bytes, frames + words * (2 * info.write_bytes + 1)
    frames = math.ceil(rows / per)
    row_cycles = 2 * info.value_bytes * cols + (slices * lanes - cols) + slices
    return (frames, frames * info.request_bytes + rows * cols * info.value_bytes,
            frames * (2 + 2 * info.write_bytes) + rows * row_cycles)


def step_traffic(config: Config, *, max_payload: int = 512, dsp: str = "generic",
                 batch: int | None = None) -> StepTraffic:
    """The link traffic of one CRC-checked training step of ``batch`` samples (default
    ``config.batch_size``) on a board whose frames hold ``max_payload`` bytes and whose engine
    maps its products as ``dsp`` (which changes only the engine's cycles)."""
    from intrain.hdl.engine import EngineGeometry

    geo = EngineGeometry(config, dsp=dsp)
    info = expected_info(config)
    batch = config.batch_size if batch is None else batch
    frame = proto.HEADER_BYTES + proto.CRC_BYTES
    frames = sent = cycles = 0
    # EngineHost.load_batch: the inputs, then the labels, each matrix in frames of its own.
    a0 = geo.memories["A0"]
    for rows, cols in ((batch * a0.logical_rows // config.batch_size, a0.cols), (batch, 1)):
        n, payload, c = _upload(info, geo.lanes, rows, cols, max_payload)
        frames, sent, cycles = frames + n, sent + payload + n * frame, cycles + c
    # RUN: its arguments, then the counters and CRCs.
    sent += frame + proto.RUN_BYTES
    cycles += 1 + 2 * proto.RUN_BYTES + 2
    received = (frames + 1) * frame + proto.counters_bytes(len(geo.crc_tensors))
    return StepTraffic(frames=frames + 1, bytes_sent=sent, bytes_received=received,
                       link_cycles=cycles, engine_cycles=geo.train_cycles(batch))


# ------------------------------------------------------------------------------------------------
# Training on a board

def train_on_board(config: Config, *, port: str, baud: int, data: str = "digits",
                   steps: int | None = None, float_baseline: bool = True,
                   progress: bool = True, timeout: float = 0.5,
                   evaluate_on_rtl: bool = True, transport: LinkTransport | None = None) -> dict:
    """Train ``config``'s network on a board through its serial port; returns the report of
    :func:`intrain.sim.engine_run.run_engine` (``bit_exact``: every step's weights, outputs,
    predictions and errors read back and equal to the golden model's; ``backend`` is
    ``"board"``) plus ``link`` (:class:`LinkStats`, ``bytes_per_step``) and ``board``
    (port, baud, clock, ``max_payload``, config hash).

    ``transport`` replaces the serial port (a connected-or-not :class:`LinkTransport`).

    Raises
    ------
    LinkError
        If the port cannot be opened, the board does not answer, was built for another
        configuration, rejects a frame, or differs from the golden model.
    """
    from intrain.data import load_dataset
    from intrain.host.checked import EngineMismatch, LoopTrainer, run_checked_training
    from intrain.host.driver import EngineHost

    n_train = load_dataset(data).n_train  # a bad data set fails before the port is opened
    total = config.epochs * n_train
    if steps is not None:
        total = min(total, steps * config.batch_size)
    own = transport is None
    if own:
        transport = SerialTransport(port, baud, timeout=timeout)
    loop = asyncio.new_event_loop()
    bar = None
    try:
        info = loop.run_until_complete(transport.connect(
            expected_info(config), n_crcs=len(host_geometry(config).crc_tensors)))
        if progress:
            from intrain.progress import progress_bar

            bar = progress_bar(total=total, unit="sample", desc=f"board training ({port})")
        trainer = LoopTrainer(EngineHost(host_geometry(config), transport), config, loop,
                              on_step=None if bar is None else bar.update)
        try:
            loop.run_until_complete(trainer.load())
            params = {"data": data, "steps": steps, "float_baseline": float_baseline,
                      "evaluate_on_rtl": evaluate_on_rtl, "backend": "board"}
            result = run_checked_training(trainer, config, params)
        except EngineMismatch as e:
            raise LinkError(f"board and golden model differ: {e}") from None
    finally:
        if bar is not None:
            bar.close()
        loop.close()
        if own:
            transport.close()
    stats = transport.stats.to_dict()
    stats["bytes_per_step"] = (stats["bytes_sent"] + stats["bytes_received"]) \
        / max(1, trainer.steps)
    result["backend"] = "board"
    stats["model"] = step_traffic(config, max_payload=info.max_payload).seconds(
        baud, info.clk_freq) if info.clk_freq else None
    result["link"] = stats
    result["board"] = {"port": port, "baud": baud, "clk_freq": info.clk_freq,
                       "max_payload": info.max_payload,
                       "config_hash": f"{info.config_hash:08x}"}
    return result
