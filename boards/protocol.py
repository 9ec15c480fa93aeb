"""The host side of the host link's framed protocol: frames encoded and decoded, words packed,
runs and counters, for the host driver (:mod:`intrain.boards.host`).

The protocol itself (frames, commands, status codes, the CRC, the board's description) is
defined in :mod:`intrain.link_spec`, which the hardware
(:class:`intrain.hdl.host_link.HostLink`) shares; everything of it is re-exported here.
"""

from __future__ import annotations

import struct

import numpy as np

from intrain.errors import IntrainError
from intrain.link_spec import (
    COUNTERS,
    CRC,
    CRC_BYTES,
    HEADER_BYTES,
    INFO_BYTES,
    RESPONSE,
    ROWS_TARGETS,
    RUN_BYTES,
    RUN_NO_WAIT,
    RUN_TRAIN,
    STATUS_TEXT,
    SYNC,
    VERSION,
    BoardInfo,
    Command,
    FrameError,
    Status,
    config_hash,
    counters_bytes,
    hardware_fields,
    value_bytes,
    word_bytes,
)

__all__ = [
    "DEFAULT_BAUD",
    "SYNC", "RESPONSE", "VERSION", "RUN_TRAIN", "RUN_NO_WAIT", "HEADER_BYTES", "CRC_BYTES",
    "INFO_BYTES", "RUN_BYTES", "COUNTERS", "ROWS_TARGETS", "STATUS_TEXT", "Command", "Status",
    "LinkError", "FrameError", "BoardInfo", "CRC", "crc16", "encode_frame", "encode_request",
    "encode_response", "decode_frame", "config_hash", "hardware_fields", "word_bytes",
    "value_bytes", "pack_words", "unpack_words", "pack_values", "rows_payload", "run_payload",
    "parse_run_payload", "counters_payload", "parse_counters", "counters_bytes",
]

#: The link's baud rate unless told otherwise (every board's USB-serial bridge takes it).
DEFAULT_BAUD = 1_000_000


class LinkError(IntrainError, RuntimeError):
    """The board answered with an error, did not answer, or cannot be reached; the message says
    which. :attr:`status` is the board's :class:`Status` when it answered one."""

    def __init__(self, message: str, status: Status | None = None):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------
# CRC and frames

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


def pack_values(values, nbytes: int) -> bytes:
    """Integers as ``nbytes`` bytes each, two's complement, little-endian (each must fit)."""
    values = np.asarray(values, dtype=np.int64).ravel()
    half = 1 << (8 * nbytes - 1)
    if nbytes < 8 and values.size and not (-half <= values.min() and values.max() < half):
        raise ValueError(f"values {values.min()} .. {values.max()} do not fit {nbytes} "
                         "signed bytes")
    raw = values.astype("<i8").view(np.uint8).reshape(-1, 8)
    if nbytes > 8:   # the sign's bytes above the 64 bits
        sign = np.where(values < 0, 0xFF, 0).astype(np.uint8)[:, None]
        raw = np.hstack([raw, np.repeat(sign, nbytes - 8, axis=1)])
    return raw[:, :nbytes].tobytes()


def rows_payload(request: int, values, info: BoardInfo) -> bytes:
    """The ``WRITE_ROWS`` payload: the packed ``host_read`` request of the first row's first
    slice, then ``values`` (row by row) as ``info.value_bytes`` bytes each."""
    return pack_words([request], info.request_bytes) + pack_values(values, info.value_bytes)


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
