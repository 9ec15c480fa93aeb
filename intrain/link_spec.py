"""The framed protocol of the host link at the wire level: one source of truth for the host
side (:mod:`intrain.boards.protocol`, :mod:`intrain.boards.host`) and the hardware
(:class:`intrain.hdl.host_link.HostLink`).

Frames
------
Both directions use the same frame::

    SYNC  LENGTH (2 bytes, little-endian)  COMMAND  PAYLOAD (LENGTH bytes)  CRC (2 bytes)

``SYNC`` is :data:`SYNC`. ``CRC`` is CRC-16/CCITT-FALSE (:data:`CRC`, Amaranth's
``amaranth.lib.crc.catalog.CRC16_CCITT_FALSE``: polynomial 0x1021, initial value 0xFFFF, no
reflection, no final XOR; ``CRC.compute()`` and :func:`intrain.boards.protocol.crc16` in
software, ``CRC.create()`` in the hardware) over
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
    engine's host words, ``max_payload``, the clock frequency, a hash of the hardware fields
    of the configuration (:func:`config_hash`; a host refuses a board built for another config)
    and ``value_bytes``.
``WRITE`` (``N * write_bytes``)
    ``N`` packed ``host_write`` words, each ``write_bytes = ceil(bits / 8)`` bytes,
    little-endian. Answers no data.
``WRITE_ROWS`` (``request_bytes + N * value_bytes``)
    The batch upload with bare values: a packed ``host_read`` request (``target``, ``layer``,
    ``mode``, ``row``, ``col``), then ``N >= 1`` values of ``value_bytes`` bytes each
    (:func:`value_bytes`; two's complement, little-endian). The values fill the matrix row by
    row from ``row`` on, every row from column 0, and the last row may stop early; the board
    writes them as the engine's row slices of ``lanes`` values (``host_write``, each value
    sign-extended to ``host_width``, the lanes past a row's end or the last value masked off).
    Only the input ``(ACTIVATIONS, 0)`` and ``(LABELS, 0)`` take it (:data:`ROWS_TARGETS`), with
    ``mode`` ``ROW`` and ``col`` 0, and the values must end inside the matrix (``batch_size``
    rows of ``layers[0]`` or 1 columns); otherwise ``BAD_ARGUMENT``. A payload without a value,
    or with a partial one, is ``BAD_LENGTH``. Answers no data.
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

``WRITE``, ``WRITE_ROWS``, ``READ`` and ``RUN`` while the engine runs (after ``RUN`` with
``RUN_NO_WAIT``) are ``BUSY``.

This module holds what both sides need (codes, frame layout, the CRC's parameters, the board's
description) and imports nothing of intrain, so that the hardware never reaches up to the host
side. Frames are encoded and decoded in :mod:`intrain.boards.protocol`, which re-exports all of
this.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
from dataclasses import dataclass

from amaranth.lib.crc import catalog

__all__ = [
    "SYNC", "RESPONSE", "VERSION", "RUN_TRAIN", "RUN_NO_WAIT", "HEADER_BYTES", "CRC_BYTES",
    "INFO_BYTES", "RUN_BYTES", "COUNTERS", "ROWS_TARGETS", "Command", "Status", "STATUS_TEXT",
    "FrameError", "CRC", "word_bytes", "value_bytes", "counters_bytes", "hardware_fields",
    "config_hash", "BoardInfo",
]

SYNC = 0xA5
#: A response's command byte is ``RESPONSE | status``.
RESPONSE = 0x80
#: Protocol version reported by ``INFO`` (3: ``WRITE_ROWS`` and ``value_bytes``).
VERSION = 3
#: ``RUN`` flags.
RUN_TRAIN = 0x01
RUN_NO_WAIT = 0x02
#: ``SYNC``, ``LENGTH`` and ``COMMAND``.
HEADER_BYTES = 4
CRC_BYTES = 2
INFO_BYTES = 20
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
    WRITE_ROWS = 0x06


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


class FrameError(ValueError):
    """A byte string that is not a well-formed frame; :attr:`status` is the error a board
    reports for it."""

    def __init__(self, message: str, status: Status):
        super().__init__(message)
        self.status = status


#: The frame CRC: CRC-16/CCITT-FALSE over bytes, from Amaranth's catalogue. Its
#: ``compute()`` is the software twin of the hardware ``CRC.create()``.
CRC = catalog.CRC16_CCITT_FALSE(8)


def word_bytes(bits: int) -> int:
    """Bytes of a packed word of ``bits`` bits: ``ceil(bits / 8)``."""
    return -(-int(bits) // 8)


#: The ``(target, layer)`` that ``WRITE_ROWS`` takes, as the values of
#: :class:`~intrain.hdl.engine.HostTarget`: the input ``A0`` (``ACTIVATIONS``, layer 0) and the
#: labels (``LABELS``); their rows are ``layers[0]`` and 1 values wide.
ROWS_TARGETS = ((1, 0), (3, 0))


def value_bytes(engine) -> int:
    """Bytes of a ``WRITE_ROWS`` value for ``engine`` (an engine or its geometry): the input's
    bits and a label's with a sign bit, rounded up to whole bytes (1 for inputs of up to 8 bits
    and up to 128 classes)."""
    bits = max(engine.activation_shapes[0].width, engine.prediction_shape.width + 1)
    return word_bytes(bits)


def counters_bytes(n_crcs: int) -> int:
    """Bytes of a ``RUN`` or ``COUNTERS`` answer: the :data:`COUNTERS`, then ``n_crcs`` CRCs."""
    return 4 * (len(COUNTERS) + n_crcs)


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
    payload the board buffers, its clock, the hash of its configuration and the bytes of a
    ``WRITE_ROWS`` value (then three bytes of zeros)."""

    version: int
    lanes: int
    host_width: int
    write_bytes: int
    request_bytes: int
    data_bytes: int
    max_payload: int
    config_hash: int
    clk_freq: int
    value_bytes: int

    _FORMAT = "<BBBBBBHIIBxxx"

    @classmethod
    def for_engine(cls, engine, *, max_payload: int, clk_freq: int) -> BoardInfo:
        """The description of a board built with ``engine`` (an
        :class:`~intrain.hdl.engine.Engine`, not elaborated)."""
        return cls(version=VERSION, lanes=engine.lanes, host_width=engine.host_width,
                   write_bytes=word_bytes(engine.host_write_layout.size),
                   request_bytes=word_bytes(engine.host_read_layout.size),
                   data_bytes=word_bytes(engine.lanes * engine.host_width),
                   max_payload=max_payload, config_hash=config_hash(engine.config),
                   clk_freq=clk_freq, value_bytes=value_bytes(engine))

    def to_bytes(self) -> bytes:
        return struct.pack(self._FORMAT, self.version, self.lanes, self.host_width,
                           self.write_bytes, self.request_bytes, self.data_bytes,
                           self.max_payload, self.config_hash, self.clk_freq, self.value_bytes)

    @classmethod
    def from_bytes(cls, payload: bytes) -> BoardInfo:
        if len(payload) != INFO_BYTES:
            raise FrameError(f"INFO takes {INFO_BYTES} bytes, not {len(payload)}",
                             Status.BAD_LENGTH)
        return cls(*struct.unpack(cls._FORMAT, payload))

    def words(self) -> list[int]:
        """The description as 32-bit words (the hardware sends these, little-endian)."""
        return list(struct.unpack(f"<{INFO_BYTES // 4}I", self.to_bytes()))

    def mismatch(self, expected: BoardInfo) -> str | None:
        """Why a host built for ``expected`` cannot talk to this board, or ``None``."""
        if self.version != expected.version:
            return f"the board speaks protocol version {self.version}, not {expected.version}"
        diffs = [f"{name} {getattr(self, name)} (expected {getattr(expected, name)})"
                 for name in ("config_hash", "lanes", "host_width", "write_bytes",
                              "request_bytes", "data_bytes", "value_bytes")
                 if getattr(self, name) != getattr(expected, name)]
        if diffs:
            return ("the board was built for another configuration: "
                    + ", ".join(d if not d.startswith("config_hash") else
                                f"config hash {self.config_hash:08x} (expected "
                                f"{expected.config_hash:08x})" for d in diffs))
        return None
