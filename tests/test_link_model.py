"""The link model of :func:`intrain.boards.host.step_traffic` against the bytes the host driver
really sends and receives for a training step: the checked trainer's step runs over a fake
board that answers every frame as the hardware does and counts the bytes."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from intrain.boards import protocol as proto
from intrain.boards.host import (
    LinkTransport,
    ProtocolClient,
    expected_info,
    host_geometry,
    step_traffic,
)
from intrain.boards.registry import BOARDS
from intrain.config import Config
from intrain.host.checked import CheckedTrainer
from intrain.host.driver import EngineHost


class FakeBoard:
    """A byte link whose far end answers like a board: ``INFO`` with ``info``, ``RUN`` with
    counters (``steps`` counting the runs) and ``n_crcs`` CRCs, everything else with an empty
    ``OK``. Keeps every request it got."""

    seconds_per_byte = 0.0

    def __init__(self, info: proto.BoardInfo, n_crcs: int):
        self.info = info
        self.n_crcs = n_crcs
        self.requests: list[tuple[int, bytes]] = []
        self.runs = 0
        self._out = b""

    async def send(self, data: bytes) -> None:
        command, payload = proto.decode_frame(data, self.info.max_payload)
        self.requests.append((command, payload))
        answer = b""
        if command == proto.Command.INFO:
            answer = self.info.to_bytes()
        elif command == proto.Command.RUN:
            self.runs += 1
            counters = {k: 0 for k in proto.COUNTERS}
            counters.update(steps=self.runs, crcs=[0] * self.n_crcs)
            answer = proto.counters_payload(counters)
        self._out += proto.encode_response(proto.Status.OK, answer)

    async def recv(self, n: int, timeout: float) -> bytes:
        out, self._out = self._out[:n], self._out[n:]
        return out

    def discard(self) -> None:
        self._out = b""


def _measure(config: Config, max_payload: int) -> tuple[FakeBoard, dict]:
    """One training step of the checked trainer over a fake board (its CRC check passes): the
    board and the link statistics of the step alone."""
    geo = host_geometry(config)
    info = dataclasses.replace(expected_info(config), max_payload=max_payload, clk_freq=1)
    board = FakeBoard(info, len(geo.crc_tensors))
    client = ProtocolClient(board)
    transport = LinkTransport(client)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(transport.connect(expected_info(config),
                                                  n_crcs=len(geo.crc_tensors)))
        trainer = CheckedTrainer(EngineHost(geo, transport), config)

        async def crcs_match(*args, **kwargs):
            return None

        trainer.check = crcs_match
        before = client.stats.to_dict()
        board.requests.clear()
        rng = np.random.default_rng(0)
        half = 1 << (config.input_bits - 1)
        a0 = rng.integers(-half, half, (config.batch_size, config.n_inputs))
        labels = rng.integers(0, config.layers[-1], config.batch_size)
        loop.run_until_complete(trainer._train_step(a0, labels, 0))
    finally:
        loop.close()
    after = client.stats.to_dict()
    return board, {k: after[k] - before[k] for k in ("frames", "bytes_sent", "bytes_received")}


CASES = [(name, 512) for name in BOARDS] + [
    ("icebreaker", 37), ("ulx3s-85f", 36), ("ulx3s-85f", 100), ("tang-nano-9k", 1000),
    ("ulx3s-85f-conv", 512), ("ulx3s-85f-conv", 36)]


@pytest.mark.parametrize("board,max_payload", CASES)
def test_step_traffic_counts_the_driver_s_bytes(board, max_payload):
    conv = board.endswith("-conv")   # the input as positions x channels: rows of 1 value
    config = BOARDS[board.removesuffix("-conv")].default_config
    if board == "tang-nano-9k":   # inputs that do not fill the last word of a row
        config = config.replace(layers=(63, 10))
    if conv:
        config = config.replace(layers="1x8x8,16C3,MP2,32C3,MP2,10", batch_size=16,
                                bits="2-8-8-8")
    fake, measured = _measure(config, max_payload)
    model = step_traffic(config, max_payload=max_payload)
    assert (model.frames, model.bytes_sent, model.bytes_received) == (
        measured["frames"], measured["bytes_sent"], measured["bytes_received"])
    commands = [c for c, _ in fake.requests]
    assert commands.count(proto.Command.RUN) == 1 and commands[-1] == proto.Command.RUN
    # The batch as bare values, or as host_write words where a row of inputs does not fit a
    # frame (max_payload 36 and 37 for rows of 64 bytes).
    rows_fit = max_payload - fake.info.request_bytes >= (1 if conv else config.layers[0])
    assert set(commands[:-1]) == ({proto.Command.WRITE_ROWS} if rows_fit
                                  else {proto.Command.WRITE, proto.Command.WRITE_ROWS})


def test_the_batch_goes_as_one_byte_per_value():
    # ULX3S: 64 x 64 inputs and 64 labels in 11 frames of whole rows (7 rows of 64 bytes after
    # the 3-byte request), against 20,498 bytes of host_write words before.
    config = BOARDS["ulx3s-85f"].default_config
    fake, measured = _measure(config, 512)
    uploads = [p for c, p in fake.requests if c == proto.Command.WRITE_ROWS]
    rb = fake.info.request_bytes
    assert [len(p) - rb for p in uploads] == [7 * 64] * 9 + [64, 64]
    assert measured["bytes_sent"] == 64 * 64 + 64 + 11 * (rb + 6) + 10


def test_step_time_is_line_plus_engine_plus_turnaround():
    config = BOARDS["ulx3s-85f"].default_config
    t = step_traffic(config)
    fast, slow = t.seconds(2_000_000, 50e6), t.seconds(1_000_000, 50e6)
    assert slow["line"] == pytest.approx(2 * fast["line"])
    assert fast["engine"] == slow["engine"] == t.engine_cycles / 50e6
    assert fast["step"] == pytest.approx(fast["line"] + fast["engine"] + fast["turnaround"])
    assert fast["steps_per_second"] == pytest.approx(1 / fast["step"])
    # The engine's cycles follow its DSP mapping (its array pipeline).
    assert step_traffic(config, dsp="ecp5").engine_cycles > t.engine_cycles
