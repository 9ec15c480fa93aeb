"""The framed protocol of the host link: one source of truth for the host driver
(:mod:`intrain.boards.host`) and the hardware (:class:`intrain.hdl.host_link.HostLink`).

Frames
------
Both directions use the same frame::

    SYNC  LENGTH (2 bytes, little-endian)  COMMAND  PAYLOAD (LENGTH bytes)  CRC (2 bytes)

``SYNC`` is :data:`SYNC`. ``CRC`` is CRC-16/CCITT-FALSE (:data:`CRC`, Amaranth's
``amaranth.lib.crc.catalog.CRC16_CCITT_FALSE``: polynomial 0x1021, initial value 0xFFFF, no
reflection, no final XOR; :func:`crc16` in software, ``CRC.create()`` in the hardware) over
``LENGTH``, ``COMMAND`` and ``PAYLOAD``, sent most significant byte first, so that the CRC over
everything after ``SYNC``, CRC included, is 0 (the algorithm's residue). A request carries a
:class:`Command`; the board answers every frame with a response whose command byte is
``RESPONSE | status`` (:class:`Status`), ``OK`` with the command's data or an error code with
no payload.

The board buffers a request (at most ``max_payload`` bytes of payload, from :class:`BoardInfo`)
and checks its CRC and length before it executes anything: a bad frame is answered with its
error and has no effect. A frame whose bytes stop for longer than the board's inter-byte timeout
is ``TRUNCATED``; bytes outside a frame (not starting with ``SYNC``) are dropped until the line
has been quiet for that timeout and answered with one ``BAD_SYNC``; a ``LENGTH`` above
``max_payload`` likewise (``BAD_LENGTH``).

Commands
--------
``INFO`` (no payload)
    Answers :data:`INFO_BYTES` bytes, :class:`BoardInfo`: protocol version, the sizes of the
    engine's host words, ``max_payload``, the clock frequency and a hash of the hardware fields
    of the configuration (:func:`config_hash`): a host refuses a board built for another config.
``WRITE`` (``N * write_bytes``)
    ``N`` packed ``host_write`` words, each ``write_bytes = ceil(bits / 8)`` bytes,
    little-endian. Answers no data.
``READ`` (``N * request_bytes``)
    ``N`` packed ``host_read`` requests; answers the ``N`` ``host_read_data`` words,
    ``data_bytes`` each.
``RUN`` (4 bytes: batch, 2 bytes; lam, signed byte; flags)
    Starts the engine (``flags``: :data:`RUN_TRAIN` for a training step, else a forward pass;
    :data:`RUN_NO_WAIT` to answer at once without data). Otherwise waits for the run to finish
    and answers the counters (:data:`COUNTERS`, 32 bits each, little-endian). A batch outside
    ``1 .. batch_size`` is ``BAD_ARGUMENT``.
``COUNTERS`` (no payload)
    Waits until the engine is idle and answers the counters.

``WRITE``, ``READ`` and ``RUN`` while the engine runs (after ``RUN`` with ``RUN_NO_WAIT``) are
``BUSY``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
from dataclasses import dataclass

from amaranth.lib.crc import catalog

from intrain.errors import IntrainError

__all__ = [
    "DEFAULT_BAUD",
    "SYNC", "RESPONSE", "VERSION", "RUN_TRAIN", "RUN_NO_WAIT", "HEADER_BYTES", "CRC_BYTES",
    "INFO_BYTES", "COUNTERS", "Command", "Status", "LinkError", "FrameError", "BoardInfo",
    "CRC", "crc16", "encode_frame", "encode_request", "encode_response", "decode_frame",
    "config_hash", "hardware_fields", "word_bytes", "pack_words", "unpack_words", "run_payload",
    "parse_run_payload", "counters_payload", "parse_counters", "counters_bytes",
]

#: The link's baud rate unless told otherwise (every board's USB-serial bridge takes it).
DEFAULT_BAUD = 1_000_000

SYNC = 0xA5
#: A response's command byte is ``RESPONSE | status``.
RESPONSE = 0x80
#: Protocol version reported by ``INFO``.
VERSION = 2
#: ``RUN`` flags.
RUN_TRAIN = 0x01
RUN_NO_WAIT = 0x02
#: ``SYNC``, ``LENGTH`` and ``COMMAND``.
HEADER_BYTES = 4
CRC_BYTES = 2
INFO_BYTES = 16
RUN_BYTES = 4
#: The engine's counters in a ``RUN`` or ``COUNTERS`` answer, in order, 32 bits each.
COUNTERS = (
    "cycles", "mac_cycles", "steps",
    "forward_cycles", "backward_cycles", "gradient_cycles", "update_cycles",
    "forward_mac_cycles", "backward_mac_cycles", "gradient_mac_cycles", "update_mac_cycles",
)


class Command(enum.IntEnum):
    INFO = 0x01
    WRITE = 0x02
    READ = 0x03
    RUN = 0x04
    COUNTERS = 0x05


class Status(enum.IntEnum):
    OK = 0x00
    BAD_CRC = 0x01
    BAD_LENGTH = 0x02
    UNKNOWN_COMMAND = 0x03
    TRUNCATED = 0x04
    BUSY = 0x05
    BAD_SYNC = 0x06
    BAD_ARGUMENT = 0x07


#: What each error means, for messages.
STATUS_TEXT = {
    Status.OK: "ok",
    Status.BAD_CRC: "the frame's CRC was wrong",
    Status.BAD_LENGTH: "the frame's length was wrong for its command or too large",
    Status.UNKNOWN_COMMAND: "the command is unknown",
    Status.TRUNCATED: "the frame stopped before its end (timeout between bytes)",
    Status.BUSY: "the engine was running",
    Status.BAD_SYNC: "bytes arrived outside a frame",
    Status.BAD_ARGUMENT: "an argument was out of range",
}


class LinkError(IntrainError, RuntimeError):
    """The board answered with an error, did not answer, or cannot be reached; the message says
    which. :attr:`status` is the board's :class:`Status` when it answered one."""

    def __init__(self, message: str, status: Status | None = None):
        super().__init__(message)
        self.status = status


class FrameError(ValueError):
    """A byte string that is not a well-formed frame; :attr:`status` is the error a board
    reports for it."""

    def __init__(self, message: str, status: Status):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------
# CRC and frames

#: The frame CRC: CRC-16/CCITT-FALSE over bytes, from Amaranth's catalogue. Its
#: ``compute()`` is the software twin of the hardware ``CRC.create()``.
CRC = catalog.CRC16_CCITT_FALSE(8)


def _crc_table() -> list[int]:
    """The register change of each leading byte: ``compute()`` of that byte from a zero
    register."""
    algorithm = CRC.algorithm
    algorithm.initial_crc = 0
    zero = algorithm(8)
    return [zero.compute([b]) for b in range(256)]


# compute() runs its eight shifts per byte in Python: 0.65 us per byte against 0.08 for a table
# of its own results (measured on 64 KiB); at 3 Mbaud (3.3 us per byte on the line) compute()
# alone would add a fifth to the host's time per frame. tests/test_protocol.py checks the two
# agree.
_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (continuing from ``crc``), equal to
    ``CRC.compute(data)``; ``crc16(b"123456789")`` is 0x29B1."""
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ b]
    return crc


def encode_frame(command: int, payload: bytes = b"") -> bytes:
    """The frame of ``command`` (a byte) and ``payload`` (at most 65535 bytes)."""
    payload = bytes(payload)
    if not 0 <= command <= 0xFF:
        raise ValueError(f"a command is a byte, not {command!r}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload holds at most 65535 bytes, not {len(payload)}")
    body = struct.pack("<HB", len(payload), command) + payload
    return bytes([SYNC]) + body + struct.pack(">H", crc16(body))


def encode_request(command: Command, payload: bytes = b"") -> bytes:
    return encode_frame(int(command), payload)


def encode_response(status: Status, payload: bytes = b"") -> bytes:
    return encode_frame(RESPONSE | int(status), payload)


def decode_frame(frame: bytes, max_payload: int = 0xFFFF) -> tuple[int, bytes]:
    """``(command, payload)`` of one whole frame; raises :class:`FrameError` with the status a
    board answers: ``BAD_SYNC`` (no ``SYNC`` first), ``BAD_LENGTH`` (``LENGTH`` above
    ``max_payload``, or more bytes than it says), ``TRUNCATED`` (fewer), ``BAD_CRC``."""
    frame = bytes(frame)
    if not frame or frame[0] != SYNC:
        raise FrameError("the frame does not start with SYNC", Status.BAD_SYNC)
    if len(frame) < HEADER_BYTES:
        raise FrameError(f"{len(frame)} bytes: the header is incomplete", Status.TRUNCATED)
    length, command = struct.unpack_from("<HB", frame, 1)
    if length > max_payload:
        raise FrameError(f"a payload of {length} bytes is more than {max_payload}",
                         Status.BAD_LENGTH)
    need = HEADER_BYTES + length + CRC_BYTES
    if len(frame) < need:
        raise FrameError(f"{len(frame)} of {need} bytes", Status.TRUNCATED)
    if len(frame) > need:
        raise FrameError(f"{len(frame)} bytes, {need} expected", Status.BAD_LENGTH)
    if crc16(frame[1:]) != 0:
        raise FrameError(f"CRC {frame[-2:].hex()} does not match "
                         f"{crc16(frame[1:-2]):04x}", Status.BAD_CRC)
    return command, frame[HEADER_BYTES:-CRC_BYTES]


# ------------------------------------------------------------------------------------------------
# Words, runs, counters

def word_bytes(bits: int) -> int:
    """Bytes of a packed word of ``bits`` bits: ``ceil(bits / 8)``."""
    return -(-int(bits) // 8)


def pack_words(words, nbytes: int) -> bytes:
    """Words as ``nbytes`` little-endian bytes each (each must fit)."""
    out = bytearray()
    for w in words:
        w = int(w)
        if not 0 <= w < 1 << (8 * nbytes):
            raise ValueError(f"word {w:#x} does not fit {nbytes} bytes")
        out += w.to_bytes(nbytes, "little")
    return bytes(out)


def unpack_words(payload: bytes, nbytes: int) -> list[int]:
    if len(payload) % nbytes:
        raise ValueError(f"{len(payload)} bytes are not a whole number of {nbytes}-byte words")
    return [int.from_bytes(payload[k:k + nbytes], "little")
            for k in range(0, len(payload), nbytes)]


def run_payload(batch: int, train: bool, lam: int, wait: bool = True) -> bytes:
    """The ``RUN`` payload: batch (2 bytes), lam (signed byte), flags."""
    if not 0 <= batch <= 0xFFFF:
        raise ValueError(f"batch {batch} does not fit 2 bytes")
    if not -128 <= lam <= 127:
        raise ValueError(f"lam {lam} does not fit a signed byte")
    flags = (RUN_TRAIN if train else 0) | (0 if wait else RUN_NO_WAIT)
    return struct.pack("<HbB", batch, lam, flags)


def parse_run_payload(payload: bytes) -> tuple[int, bool, int, bool]:
    """``(batch, train, lam, wait)`` of a ``RUN`` payload."""
    batch, lam, flags = struct.unpack("<HbB", payload)
    return batch, bool(flags & RUN_TRAIN), lam, not flags & RUN_NO_WAIT


def counters_bytes(n_crcs: int) -> int:
    """Bytes of a ``RUN`` or ``COUNTERS`` answer: the :data:`COUNTERS`, then ``n_crcs`` CRCs."""
    return 4 * (len(COUNTERS) + n_crcs)


def counters_payload(counters: dict) -> bytes:
    """The answer for ``counters`` (by name, and ``crcs``: the engine's tensor CRCs)."""
    values = [counters[k] for k in COUNTERS] + list(counters.get("crcs", []))
    return struct.pack(f"<{len(values)}I", *(v & 0xFFFFFFFF for v in values))


def parse_counters(payload: bytes, n_crcs: int = 0) -> dict:
    """The counters of a ``RUN`` or ``COUNTERS`` answer, by name (:data:`COUNTERS`), and its
    ``n_crcs`` tensor CRCs as ``crcs`` (the order of ``EngineGeometry.crc_tensors``)."""
    n = counters_bytes(n_crcs)
    if len(payload) != n:
        raise FrameError(f"counters take {n} bytes, not {len(payload)}", Status.BAD_LENGTH)
    values = struct.unpack(f"<{n // 4}I", payload)
    out: dict = dict(zip(COUNTERS, values))
    if n_crcs:
        out["crcs"] = list(values[len(COUNTERS):])
    return out


# ------------------------------------------------------------------------------------------------
# The board's description

#: Fields of :meth:`Config.to_dict` that do not change the hardware (the host decides them).
_HOST_ONLY_FIELDS = ("epochs", "lr_schedule", "seed")


def hardware_fields(config) -> dict:
    """The fields of ``config`` that the hardware is built from (every field but the training
    schedule and the seed of the initial weights; the random lanes' seeds stay)."""
    d = config.to_dict()
    for k in _HOST_ONLY_FIELDS:
        d.pop(k, None)
    return d


def config_hash(config) -> int:
    """32 bits of the SHA-256 of :func:`hardware_fields` (as sorted JSON)."""
    text = json.dumps(hardware_fields(config), sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@dataclass(frozen=True)
class BoardInfo:
    """What ``INFO`` answers: the protocol version, the engine's host word sizes, the largest
    payload the board buffers, its clock and the hash of its configuration."""

    version: int
    lanes: int
    host_width: int
    write_bytes: int
    request_bytes: int
    data_bytes: int
    max_payload: int
    config_hash: int
    clk_freq: int

    _FORMAT = "<BBBBBBHII"

    @classmethod
    def for_engine(cls, engine, *, max_payload: int, clk_freq: int) -> BoardInfo:
        """The description of a board built with ``engine`` (an
        :class:`~intrain.hdl.engine.Engine`, not elaborated)."""
        return cls(version=VERSION, lanes=engine.lanes, host_width=engine.host_width,
                   write_bytes=word_bytes(engine.host_write_layout.size),
                   request_bytes=word_bytes(engine.host_read_layout.size),
                   data_bytes=word_bytes(engine.lanes * engine.host_width),
                   max_payload=max_payload, config_hash=config_hash(engine.config),
                   clk_freq=clk_freq)

    def to_bytes(self) -> bytes:
        return struct.pack(self._FORMAT, self.version, self.lanes, self.host_width,
                           self.write_bytes, self.request_bytes, self.data_bytes,
                           self.max_payload, self.config_hash, self.clk_freq)

    @classmethod
    def from_bytes(cls, payload: bytes) -> BoardInfo:
        if len(payload) != INFO_BYTES:
            raise FrameError(f"INFO takes {INFO_BYTES} bytes, not {len(payload)}",
                             Status.BAD_LENGTH)
        return cls(*struct.unpack(cls._FORMAT, payload))

    def words(self) -> list[int]:
        """The description as four 32-bit words (the hardware sends these, little-endian)."""
        return list(struct.unpack("<4I", self.to_bytes()))

    def mismatch(self, expected: BoardInfo) -> str | None:
        """Why a host built for ``expected`` cannot talk to this board, or ``None``."""
        if self.version != expected.version:
            return f"the board speaks protocol version {self.version}, not {expected.version}"
        diffs = [f"{name} {getattr(self, name)} (expected {getattr(expected, name)})"
                 for name in ("config_hash", "lanes", "host_width", "write_bytes",
                              "request_bytes", "data_bytes")
                 if getattr(self, name) != getattr(expected, name)]
        if diffs:
            return ("the board was built for another configuration: "
                    + ", ".join(d if not d.startswith("config_hash") else
                                f"config hash {self.config_hash:08x} (expected "
                                f"{expected.config_hash:08x})" for d in diffs))
        return None
