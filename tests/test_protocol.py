"""The host link's frame format in pure Python: CRC-16/CCITT-FALSE, frames in and out, every
error a board reports for a bad frame, packed words, runs, counters and the board's
description."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from intrain.boards import protocol as proto
from intrain.boards.protocol import BoardInfo, Command, FrameError, Status
from intrain.config import Config


def test_crc16_ccitt_false_check_value():
    assert proto.crc16(b"123456789") == 0x29B1
    assert proto.crc16(b"") == 0xFFFF
    assert proto.crc16(b"56789", proto.crc16(b"1234")) == 0x29B1


def test_crc16_equals_the_catalogue_compute():
    assert proto.CRC.compute(b"123456789") == 0x29B1 and proto.CRC.residue() == 0
    rng = np.random.default_rng(2)
    for n in [*range(0, 40), 257, 4096]:
        data = rng.integers(0, 256, n).astype(np.uint8).tobytes()
        assert proto.crc16(data) == proto.CRC.compute(data), n
        cut = n // 3
        assert proto.crc16(data[cut:], proto.crc16(data[:cut])) == proto.CRC.compute(data)


def test_crc_over_a_frame_and_its_crc_is_zero():
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 17, 300):
        frame = proto.encode_request(Command.WRITE, rng.integers(0, 256, n).astype(np.uint8))
        assert proto.crc16(frame[1:]) == 0


@pytest.mark.parametrize("command", list(Command))
def test_frames_round_trip(command):
    rng = np.random.default_rng(int(command))
    for n in (0, 1, 5, 255, 256, 1000):
        payload = bytes(rng.integers(0, 256, n).astype(np.uint8))
        frame = proto.encode_request(command, payload)
        assert frame[0] == proto.SYNC and len(frame) == n + 6
        assert struct.unpack_from("<H", frame, 1)[0] == n and frame[3] == command
        assert proto.decode_frame(frame) == (command, payload)
    answer = proto.encode_response(Status.BUSY)
    assert proto.decode_frame(answer) == (proto.RESPONSE | Status.BUSY, b"")


def _errors(frame, **kw):
    try:
        proto.decode_frame(frame, **kw)
    except FrameError as e:
        return e.status
    return None


def test_every_prefix_of_a_frame_is_truncated():
    frame = proto.encode_request(Command.READ, bytes(range(12)))
    for k in range(1, len(frame)):
        assert _errors(frame[:k]) == Status.TRUNCATED, k


def test_every_single_bit_flip_after_the_length_is_a_bad_crc():
    frame = proto.encode_request(Command.WRITE, bytes(range(40)))
    for byte in range(3, len(frame)):
        for bit in range(8):
            bad = bytearray(frame)
            bad[byte] ^= 1 << bit
            assert _errors(bytes(bad)) == Status.BAD_CRC, (byte, bit)


def test_other_frame_errors():
    frame = proto.encode_request(Command.WRITE, bytes(10))
    assert _errors(b"") == Status.BAD_SYNC
    assert _errors(b"\x00" + frame[1:]) == Status.BAD_SYNC
    assert _errors(frame, max_payload=9) == Status.BAD_LENGTH
    assert _errors(frame, max_payload=10) is None
    assert _errors(frame + b"\x00") == Status.BAD_LENGTH
    longer = bytearray(frame)
    longer[1] = 11  # LENGTH one more than sent: waits for a byte that never comes
    assert _errors(bytes(longer)) == Status.TRUNCATED
    shorter = bytearray(frame)
    shorter[1] = 9
    assert _errors(bytes(shorter)) == Status.BAD_LENGTH
    with pytest.raises(ValueError, match="65535"):
        proto.encode_frame(1, bytes(65536))
    with pytest.raises(ValueError, match="a byte"):
        proto.encode_frame(256)


def test_status_codes_and_texts():
    assert len({int(s) for s in Status}) == len(Status)
    assert all(s in proto.STATUS_TEXT for s in Status)
    assert all(not c & proto.RESPONSE for c in Command)


def test_words_pack_little_endian_and_round_trip():
    assert proto.pack_words([0x0102, 0x0A0B0C], 3) == bytes([2, 1, 0, 0x0C, 0x0B, 0x0A])
    words = [0, 1, (1 << 78) - 1, 12345678901234567890]
    nbytes = proto.word_bytes(78)
    assert nbytes == 10 and proto.word_bytes(80) == 10 and proto.word_bytes(81) == 11
    assert proto.unpack_words(proto.pack_words(words, nbytes), nbytes) == words
    with pytest.raises(ValueError, match="does not fit"):
        proto.pack_words([1 << 16], 2)
    with pytest.raises(ValueError, match="whole number"):
        proto.unpack_words(bytes(5), 2)


@pytest.mark.parametrize(("batch", "train", "lam", "wait"),
                         [(1, True, 0, True), (64, False, -3, True), (4096, True, 127, False),
                          (7, False, -128, False)])
def test_run_payload_round_trips(batch, train, lam, wait):
    payload = proto.run_payload(batch, train, lam, wait)
    assert len(payload) == proto.RUN_BYTES
    assert proto.parse_run_payload(payload) == (batch, train, lam, wait)


def test_run_payload_refuses_out_of_range_values():
    with pytest.raises(ValueError, match="lam"):
        proto.run_payload(1, True, 128)
    with pytest.raises(ValueError, match="batch"):
        proto.run_payload(1 << 16, True, 0)


def test_counters_round_trip():
    counters = {name: (k + 1) * 0x01010101 for k, name in enumerate(proto.COUNTERS)}
    payload = proto.counters_payload(counters)
    assert len(payload) == 44
    assert proto.parse_counters(payload) == counters
    with pytest.raises(FrameError, match="44 bytes"):
        proto.parse_counters(payload[:-1])


def _engine(config):
    from intrain.boards.host import host_geometry

    return host_geometry(config)


def test_board_info_round_trips_and_matches_the_engine():
    config = Config(layers=(6, 5, 3), array_rows=2, array_cols=3, batch_size=4)
    engine = _engine(config)
    info = BoardInfo.for_engine(engine, max_payload=512, clk_freq=12_000_000)
    assert info.lanes == 3 and info.host_width == engine.host_width
    assert info.write_bytes == -(-engine.host_write_layout.size // 8)
    assert info.request_bytes == -(-engine.host_read_layout.size // 8)
    assert info.data_bytes == -(-3 * engine.host_width // 8)
    raw = info.to_bytes()
    assert len(raw) == proto.INFO_BYTES
    assert BoardInfo.from_bytes(raw) == info
    assert struct.pack("<5I", *info.words()) == raw
    assert raw[-4:] == bytes([info.value_bytes, 0, 0, 0]) and info.value_bytes == 1
    with pytest.raises(FrameError):
        BoardInfo.from_bytes(raw[:-1])


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, 1),                                        # 8-bit inputs, 3 classes
    ({"input_bits": 9}, 2),
    ({"input_bits": 16}, 2),
    ({"layers": (6, 5, 128)}, 1),                   # labels 0 .. 127: 7 bits and a sign
    ({"layers": (6, 5, 129)}, 2),
])
def test_value_bytes_holds_an_input_and_a_label_with_its_sign(kw, expected):
    config = Config(layers=(6, 5, 3), array_rows=2, array_cols=2, batch_size=4).replace(**kw)
    geo = _engine(config)
    vb = proto.value_bytes(geo)
    assert vb == expected
    half = 1 << (8 * vb - 1)
    assert -half <= -(1 << (config.input_bits - 1)) and (1 << (config.input_bits - 1)) <= half
    assert config.layers[-1] - 1 < half


def test_rows_targets_are_the_input_and_the_labels():
    from intrain.hdl.engine import HostTarget

    assert proto.ROWS_TARGETS == ((HostTarget.ACTIVATIONS.value, 0), (HostTarget.LABELS.value, 0))


def test_packed_values_are_twos_complement_little_endian():
    values = np.array([[0, 1, -1], [127, -128, 5]])
    assert proto.pack_values(values, 1) == bytes([0, 1, 255, 127, 128, 5])
    assert proto.pack_values([300, -2], 2) == bytes([44, 1, 254, 255])
    assert proto.pack_values([-2, 3], 10) == bytes([254] + [255] * 9 + [3] + [0] * 9)
    for bad, nbytes in (([128], 1), ([-129], 1), ([1 << 15], 2)):
        with pytest.raises(ValueError, match="do not fit"):
            proto.pack_values(bad, nbytes)
    info = BoardInfo.for_engine(_engine(Config(layers=(6, 5, 3), array_rows=2, array_cols=2,
                                               batch_size=4)), max_payload=64, clk_freq=1)
    payload = proto.rows_payload(0x1234, values, info)
    assert payload == (0x1234).to_bytes(info.request_bytes, "little") + proto.pack_values(
        values, info.value_bytes)


def test_config_hash_covers_the_hardware_fields_only():
    base = Config(layers=(6, 5, 3), array_rows=2, array_cols=2, batch_size=4)
    h = proto.config_hash(base)
    assert h == proto.config_hash(Config.from_dict(base.to_dict()))
    for same in (base.replace(epochs=7), base.replace(lr_schedule=((0, 3),)),
                 base.replace(seed=99, rng_seeds=base.rng_seeds)):
        assert proto.config_hash(same) == h
    for other in (base.replace(layers=(6, 6, 3)), base.replace(array_cols=3),
                  base.replace(batch_size=5), base.replace(bits="8-8-8-8"),
                  base.replace(seed=99)):  # new seed, new random lanes' seeds
        assert proto.config_hash(other) != h


def test_mismatch_names_what_differs():
    a = Config(layers=(6, 5, 3), array_rows=2, array_cols=2, batch_size=4)
    b = a.replace(array_rows=4, array_cols=4)
    board = BoardInfo.for_engine(_engine(a), max_payload=64, clk_freq=1)
    host = BoardInfo.for_engine(_engine(b), max_payload=0, clk_freq=0)
    assert board.mismatch(BoardInfo.for_engine(_engine(a), max_payload=0, clk_freq=0)) is None
    why = board.mismatch(host)
    assert why.startswith("the board was built for another configuration")
    assert "config hash" in why and "lanes 2 (expected 4)" in why
    old = BoardInfo(**{**board.__dict__, "version": 0})
    assert "protocol version 0" in old.mismatch(host)
