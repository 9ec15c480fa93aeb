# amaranth: UnusedElaboratable=no
"""The host link without a board: the hardware CRC against the protocol's, HostLink's
parameters, and the host driver (protocol client, transport, serial port errors) against a
scripted board. The whole link in simulation is ``test_host_link_cocotb.py``."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from amaranth.sim import Simulator

from intrain.boards import protocol as proto
from intrain.boards.host import (
    LinkTransport,
    ProtocolClient,
    SerialLink,
    expected_info,
    host_geometry,
    train_on_board,
)
from intrain.boards.protocol import BoardInfo, Command, LinkError, Status
from intrain.config import Config
from intrain.errors import ConfigError
from intrain.hdl.host_link import HostLink

SMALL = Config(layers=(6, 5, 3), array_rows=2, array_cols=2, batch_size=4)


def test_hardware_crc_matches_the_protocol_crc():
    # The link's CRC unit, as HostLink uses it: restarted before each frame, a byte per valid
    # cycle; its register after each byte equals crc16 of the bytes so far, and a frame followed
    # by its CRC (most significant byte first) leaves the residue.
    unit = proto.CRC.create()
    sim = Simulator(unit)
    sim.add_clock(1e-6)
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, n).astype(np.uint8).tobytes() for n in (0, 1, 2, 5, 64)]
    checked = []

    async def bench(ctx):
        for frame in frames:
            ctx.set(unit.start, 1)
            await ctx.tick()
            ctx.set(unit.start, 0)
            assert ctx.get(unit.crc) == 0xFFFF
            crc = proto.crc16(frame)
            whole = frame + crc.to_bytes(2, "big")
            for k, b in enumerate(whole):
                ctx.set(unit.data, b)
                ctx.set(unit.valid, 1)
                await ctx.tick()
                ctx.set(unit.valid, 0)
                assert ctx.get(unit.crc) == proto.crc16(whole[:k + 1]), (frame, k)
                checked.append(b)
            assert ctx.get(unit.match_detected) and ctx.get(unit.crc) == 0
            ctx.set(unit.data, whole[-1] ^ 1)    # one more byte: no longer a codeword
            ctx.set(unit.valid, 1)
            await ctx.tick()
            ctx.set(unit.valid, 0)
            assert not ctx.get(unit.match_detected)

    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == sum(len(f) + 2 for f in frames)


def test_host_link_describes_itself():
    link = HostLink(SMALL, clk_freq=12_000_000, baud=1_000_000, max_payload=256)
    assert link.divisor == 12 and link.timeout == 12_000_000 // 50
    assert link.info == BoardInfo.for_engine(link.engine, max_payload=256, clk_freq=12_000_000)
    assert link.info.mismatch(expected_info(SMALL)) is None


@pytest.mark.parametrize(("kw", "match"), [
    ({"baud": 4_000_000}, "at most 3000000 baud"),
    ({"max_payload": 3}, "max_payload must hold a write word"),
    ({"max_payload": 70000}, "max_payload must hold"),
    ({"timeout": 10}, "at least two bytes' time"),
    ({"dsp": "nonsense"}, "nonsense"),
])
def test_host_link_refuses_bad_parameters(kw, match):
    kw = {"clk_freq": 12_000_000, **kw}
    # An unknown dsp is the engine's ValueError (or, with an engine of generic arithmetic only,
    # a ConfigError).
    with pytest.raises((ConfigError, ValueError), match=match):
        HostLink(SMALL, **kw)


# ------------------------------------------------------------------------------------------------
# The host driver against a scripted board

class ScriptedBoard:
    """A byte link whose other end answers like a board: WRITE stores words, READ answers
    ``word * 3 + 1`` per request, RUN and COUNTERS answer fixed counters; ``override`` maps a
    command to raw answer bytes."""

    seconds_per_byte = 0.0

    def __init__(self, info: BoardInfo, override=None):
        self.info = info
        self.override = override or {}
        self.inbox = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.written: list[int] = []
        self.rows: list[tuple[int, list[int]]] = []   # WRITE_ROWS: (request, values)
        self.counters = {name: k + 1 for k, name in enumerate(proto.COUNTERS)}

    async def send(self, data: bytes) -> None:
        command, payload = proto.decode_frame(data)
        self.frames.append((command, payload))
        if command in self.override:
            self.inbox += self.override[command]
            return
        info = self.info
        if len(payload) > info.max_payload:
            self.inbox += proto.encode_response(Status.BAD_LENGTH)
        elif command == Command.INFO:
            self.inbox += proto.encode_response(Status.OK, info.to_bytes())
        elif command == Command.WRITE:
            self.written += proto.unpack_words(payload, info.write_bytes)
            self.inbox += proto.encode_response(Status.OK)
        elif command == Command.WRITE_ROWS:
            rb = info.request_bytes
            values = np.frombuffer(payload[rb:], dtype=f"<i{info.value_bytes}")
            self.rows.append((int.from_bytes(payload[:rb], "little"), values.tolist()))
            self.inbox += proto.encode_response(Status.OK)
        elif command == Command.READ:
            words = proto.unpack_words(payload, info.request_bytes)
            self.inbox += proto.encode_response(Status.OK, proto.pack_words(
                [w * 3 + 1 for w in words], info.data_bytes))
        elif command in (Command.RUN, Command.COUNTERS):
            self.inbox += proto.encode_response(Status.OK,
                                                proto.counters_payload(self.counters))
        else:
            self.inbox += proto.encode_response(Status.UNKNOWN_COMMAND)

    async def recv(self, n: int, timeout: float) -> bytes:
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    def discard(self) -> None:
        self.inbox.clear()


def _board(max_payload=64, config=SMALL, **kw):
    info = BoardInfo.for_engine(_engine(config), max_payload=max_payload, clk_freq=1000)
    board = ScriptedBoard(info, **kw)
    return board, LinkTransport(ProtocolClient(board, timeout=0.01))


def _engine(config):
    return host_geometry(config)


def _run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_transport_cuts_writes_and_reads_into_frames_of_max_payload():
    board, transport = _board(max_payload=64)
    info = _run(transport.connect(expected_info(SMALL)))
    words = list(range(1, 24))
    _run(transport.write(words))
    assert board.written == words
    writes = [p for c, p in board.frames if c == Command.WRITE]
    assert len(writes) == -(-23 // (64 // info.write_bytes))
    assert all(len(p) <= 64 and len(p) % info.write_bytes == 0 for p in writes)
    got = _run(transport.read(list(range(100))))
    assert got == [w * 3 + 1 for w in range(100)]
    reads = [p for c, p in board.frames if c == Command.READ]
    assert len(reads) == -(-100 // (64 // info.request_bytes))
    assert transport.stats.frames == 1 + len(writes) + len(reads)


def test_load_batch_sends_bare_values_in_frames_of_whole_rows():
    from intrain.hdl.engine import HostTarget
    from intrain.host.driver import EngineHost

    config = SMALL.replace(batch_size=20)
    board, transport = _board(max_payload=40, config=config)
    info = _run(transport.connect(expected_info(config)))
    host = EngineHost(host_geometry(config), transport)
    rng = np.random.default_rng(5)
    a0 = rng.integers(-128, 128, (20, 6))
    labels = rng.integers(0, 3, 20)
    _run(host.load_batch(a0, labels))
    assert board.written == []
    per = (40 - info.request_bytes) // 6          # 6 rows of 6 one-byte values a frame
    assert [len(v) for _, v in board.rows] == [per * 6] * 3 + [2 * 6, 20]
    starts = list(range(0, 20, per)) + [0]
    targets = [HostTarget.ACTIVATIONS] * 4 + [HostTarget.LABELS]
    for (request, _), row, target in zip(board.rows, starts, targets):
        assert request == host._reader.pack(target, 0, 0, row, 0)
    assert sum((v for _, v in board.rows[:4]), []) == a0.ravel().tolist()
    assert board.rows[4][1] == labels.tolist()


def test_load_batch_falls_back_to_words_when_a_row_does_not_fit_a_frame():
    from intrain.host.driver import EngineHost

    config = SMALL.replace(layers=(60, 5, 3))
    board, transport = _board(max_payload=60, config=config)   # 60 values + the request
    info = _run(transport.connect(expected_info(config)))
    host = EngineHost(host_geometry(config), transport)
    a0 = np.arange(4 * 60).reshape(4, 60) % 200 - 100
    _run(host.load_batch(a0, [0, 1, 2, 0]))
    assert len(board.written) == 4 * -(-60 // info.lanes)          # A0 as host_write words
    assert [v for _, v in board.rows] == [[0, 1, 2, 0]]              # the labels as values


def test_transport_runs_and_reads_the_counters():
    board, transport = _board()
    _run(transport.connect())
    counters = _run(transport.run(3, True, -2, limit=500))
    assert counters == board.counters
    command, payload = board.frames[-1]
    assert command == Command.RUN and proto.parse_run_payload(payload) == (3, True, -2, True)


def test_transport_refuses_a_board_of_another_config():
    board, transport = _board(config=SMALL.replace(array_cols=3))
    with pytest.raises(LinkError, match="built for another configuration"):
        _run(transport.connect(expected_info(SMALL)))


@pytest.mark.parametrize(("answer", "match"), [
    (b"", "no answer from the board"),
    (b"\xa5\x00", "no answer from the board .*2 of a header's 4 bytes"),
    (b"\x00\x01\x02\x03\x04\x05", "does not start with SYNC"),
    (proto.encode_response(Status.OK, bytes(16))[:-1] + b"\x00", "damaged answer"),
    (proto.encode_frame(0x7F), "unknown code"),
    (proto.encode_frame(Command.INFO), "unknown code"),  # a request, not an answer
])
def test_bad_answers_are_clear_errors(answer, match):
    board, transport = _board(override={Command.INFO: answer})
    with pytest.raises(LinkError, match=match):
        _run(transport.connect())


@pytest.mark.parametrize("status", [s for s in Status if s != Status.OK])
def test_error_answers_raise_board_error_with_the_status(status):
    board, transport = _board(override={Command.WRITE: proto.encode_response(status)})
    _run(transport.connect())
    with pytest.raises(LinkError) as e:
        _run(transport.write([1, 2]))
    assert e.value.status == status
    assert str(e.value).startswith(f"the board rejected WRITE ({2 * transport.info.write_bytes}"
                                   f" bytes): {status.name}, ")
    assert transport.stats.errors == 1


def test_a_missing_serial_port_is_a_one_line_error(tmp_path):
    port = str(tmp_path / "ttyNONE")
    with pytest.raises(LinkError, match=f"^cannot open serial port {port}: ") as e:
        SerialLink(port, 115200)
    assert "\n" not in str(e.value)
    with pytest.raises(LinkError, match="cannot open serial port"):
        train_on_board(SMALL.replace(layers=(64, 8, 10)), port=port, baud=115200, steps=1,
                       progress=False)


# ------------------------------------------------------------------------------------------------
# The board self-test against the scripted board (it passes on the simulated board:
# test_host_link_cocotb.py)

def _check(transport, baud=100):
    from intrain.boards.check import board_check

    seen = []
    result = board_check(SMALL, port="scripted", baud=baud, transport=transport,
                         echo=seen.append)
    assert [c.to_dict() for c in seen] == result["checks"]
    return result, {c.name: c for c in seen}


def test_board_check_finds_a_memory_that_reads_back_wrong():
    # The scripted board answers every READ with `request * 3 + 1`, not what was written.
    _, transport = _board()
    result, checks = _check(transport)
    assert [c["name"] for c in result["checks"]] == ["protocol", "config", "uart", "memory"]
    assert not result["ok"] and not checks["memory"].ok
    assert checks["memory"].detail.startswith("W1 pattern 1: ")
    assert "values differ, first [0, 0]: wrote" in checks["memory"].detail
    assert checks["uart"].detail == "clock 0.001 MHz / 10 = 100 baud (+0.00% from 100)"
    assert result["board"]["clk_freq"] == 1000


def test_board_check_stops_at_another_protocol_version():
    info = BoardInfo.for_engine(_engine(SMALL), max_payload=64, clk_freq=1000)
    other = proto.BoardInfo(**{**info.__dict__, "version": proto.VERSION + 1})
    _, transport = _board(override={Command.INFO: proto.encode_response(Status.OK,
                                                                          other.to_bytes())})
    result, checks = _check(transport)
    assert list(checks) == ["protocol"] and not result["ok"]
    assert checks["protocol"].detail.startswith(
        f"version {proto.VERSION + 1} (host: {proto.VERSION})")


def test_board_check_refuses_a_rate_the_board_clock_cannot_make():
    _, transport = _board()
    result, checks = _check(transport, baud=300)     # 1 kHz / 300: 3 cycles per bit
    assert list(checks) == ["protocol", "config", "uart"] and not checks["uart"].ok
    assert "at least 4 clock cycles per bit" in checks["uart"].detail
