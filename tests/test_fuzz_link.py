# amaranth: UnusedElaboratable=no
"""Fuzz tests of every frame the host decodes from a board: random bytes, truncations, bit
flips, lengths that lie, well-formed frames with the wrong payload, leftovers of one answer in
front of the next; for every request the host makes (``WRITE``, ``WRITE_ROWS``, ``READ``,
``RUN``, ``COUNTERS``) after a board description that may itself be damaged.

The property: the host returns a well-formed result or raises the documented
:class:`~intrain.boards.protocol.LinkError` (``intrain train --backend board`` then ends in one
line ``intrain: error: ...``); never another exception, never a hang.
"""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest
from fuzz_helpers import assert_clean_exit, budgets, cli, mutations, no_hang, run_fuzz
from hypothesis import strategies as st

from intrain.boards import host as board_host
from intrain.boards import protocol as proto
from intrain.boards.host import LinkTransport, ProtocolClient, expected_info, host_geometry
from intrain.boards.protocol import BoardInfo, Command, FrameError, LinkError, Status
from intrain.config import Config

SMALL = Config(layers=(6, 5, 3), array_rows=2, array_cols=2, batch_size=4)


@pytest.fixture(scope="module")
def info():
    return BoardInfo.for_engine(host_geometry(SMALL), max_payload=64, clk_freq=1000)


@st.composite
def _answers(draw, valid: bytes) -> bytes:
    """What a damaged link may deliver instead of ``valid``."""
    def lying_length(args):
        length, fix_crc = args
        body = struct.pack("<H", length) + valid[3:-2]
        return bytes([proto.SYNC]) + body + (struct.pack(">H", proto.crc16(body)) if fix_crc
                                             else valid[-2:])

    status = st.sampled_from([*Status, 0x7F, 0x00, 0x01])
    return draw(st.one_of(
        st.just(valid),
        st.binary(max_size=40),
        mutations(valid),
        st.tuples(st.integers(0, 0xFFFF), st.booleans()).map(lying_length),
        st.tuples(status, st.binary(max_size=80)).map(
            lambda a: proto.encode_frame(proto.RESPONSE | a[0] if a[0] < 0x80 else a[0], a[1])),
        st.binary(min_size=1, max_size=8).map(lambda extra: valid + extra),
    ))


class FuzzBoard:
    """A byte link whose board answers every request as a good board would (``ScriptedBoard``
    of ``test_host_link``), then lets ``damage`` change the answer's bytes."""

    seconds_per_byte = 0.0

    def __init__(self, info: BoardInfo, damage):
        self.info = info
        self.damage = damage
        self.inbox = bytearray()

    def _good_answer(self, command, payload) -> bytes:
        info = self.info
        if command == Command.INFO:
            return proto.encode_response(Status.OK, info.to_bytes())
        if command == Command.READ:
            words = proto.unpack_words(payload, info.request_bytes)
            return proto.encode_response(Status.OK, proto.pack_words(
                [w % (1 << 8 * info.data_bytes) for w in words], info.data_bytes))
        if command in (Command.RUN, Command.COUNTERS):
            counters = {name: k for k, name in enumerate(proto.COUNTERS)}
            return proto.encode_response(Status.OK, proto.counters_payload(counters))
        return proto.encode_response(Status.OK)

    async def send(self, data: bytes) -> None:
        command, payload = proto.decode_frame(data)  # the host always sends good frames
        self.inbox += self.damage(self._good_answer(command, payload))

    async def recv(self, n: int, timeout: float) -> bytes:
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    def discard(self) -> None:
        self.inbox.clear()


@budgets(800)
def test_decode_frame_returns_a_frame_or_a_frame_error(budget):
    def prop(data, max_payload):
        try:
            command, payload = proto.decode_frame(data, max_payload)
        except FrameError as e:
            assert isinstance(e.status, Status)
        else:
            assert proto.encode_frame(command, payload) == data

    frame = proto.encode_response(Status.OK, bytes(range(20)))
    run_fuzz(budget, prop, st.one_of(st.binary(max_size=80), mutations(frame)),
             st.integers(0, 0xFFFF))


async def _session(transport: LinkTransport, check: bool):
    """Every request the host makes, in a training run's order; each returns a well-formed
    result or raises LinkError (then the next one is tried). ``check``: connect expecting
    SMALL's board (else any board description is taken)."""
    try:
        got = await transport.connect(expected_info(SMALL) if check else None)
    except LinkError:
        return
    info = got
    words = list(range(1, 30))
    rows = np.arange(-30, 30).reshape(10, 6)
    for request in ("write", "write_rows", "read", "run", "counters", "read"):
        try:
            if request == "write":
                assert await transport.write(words) is None
            elif request == "write_rows":
                sent = await transport.write_rows(rows, lambda row: row)
                assert sent == (info.max_payload - info.request_bytes >= 6 * info.value_bytes)
            elif request == "read":
                data = await transport.read(words)
                assert len(data) == len(words)
                assert all(0 <= w < 1 << 8 * info.data_bytes for w in data)
            elif request == "run":
                counters = await transport.run(2, True, -1, limit=100)
                assert set(counters) == set(proto.COUNTERS)
            else:
                counters = await transport.client.counters()
                assert set(counters) == set(proto.COUNTERS)
        except LinkError:
            pass


@budgets(400)
def test_the_host_survives_any_answer(budget, info):
    def prop(data, check):
        def damage(valid):
            return data.draw(_answers(valid))

        board = FuzzBoard(info, damage)
        transport = LinkTransport(ProtocolClient(board, timeout=0.01))
        with no_hang():
            asyncio.new_event_loop().run_until_complete(_session(transport, check))

    run_fuzz(budget, prop, st.data(), st.booleans())


@budgets(20)
def test_board_training_through_a_damaged_link_ends_in_one_line(budget, monkeypatch, tmp_path):
    """``intrain train --backend board`` end to end, the serial port replaced by a board whose
    answers are damaged from a drawn request on."""
    from intrain.boards.registry import get_board

    board_info = BoardInfo.for_engine(host_geometry(get_board("icebreaker").default_config),
                                      max_payload=256, clk_freq=24_000_000)

    def prop(data, first_bad):
        count = [0]

        def damage(valid):
            count[0] += 1
            return valid if count[0] < first_bad else data.draw(_answers(valid))

        class Transport(LinkTransport):
            def __init__(self, port, baud, timeout):
                super().__init__(ProtocolClient(FuzzBoard(board_info, damage), timeout=0.01))

            def close(self):
                pass

        monkeypatch.setattr(board_host, "SerialTransport", Transport)
        rc, _, err = cli(["train", "-q", "--backend", "board", "--board", "icebreaker",
                          "--port", "fuzz", "--steps", "1", "--no-float"])
        assert_clean_exit(rc, err)
        assert rc == 2  # a scripted board never trains like the golden model

    run_fuzz(budget, prop, st.data(), st.integers(1, 12))
