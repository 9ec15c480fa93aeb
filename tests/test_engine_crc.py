# amaranth: UnusedElaboratable=no
"""The engine's tensor CRCs: the hardware unit against its software twin, the write order of the
geometry, and the checked trainer's use of them."""

from __future__ import annotations

import asyncio
import zlib

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.sim import Simulator

from intrain.config import Config
from intrain.hdl.engine import EngineGeometry
from intrain.hdl.engine.crc import TensorCrc, crc32_parameters, crc32_taps
from intrain.host.checked import CheckedTrainer, EngineMismatch
from intrain.host.crc import expected_crcs, tensor_crc, tensor_words


@pytest.mark.parametrize("width", [8, 16, 64, 256])
def test_zlib_crc32_is_the_amaranth_crc_of_little_endian_words(width):
    rng = np.random.default_rng(width)
    words = [int.from_bytes(rng.bytes(width // 8), "little") for _ in range(40)]
    data = b"".join(w.to_bytes(width // 8, "little") for w in words)
    assert crc32_parameters(width).compute(words) == zlib.crc32(data)


CONFIGS = {
    "default": Config(),
    "2x3_rng4": Config(layers=(7, 5, 3), array_rows=2, array_cols=3, batch_size=5, rng_lanes=4),
    "4x2_rng1": Config(layers=(9, 6, 4, 3), array_rows=4, array_cols=2, batch_size=7,
                       rng_lanes=1),
    "1x1": Config(layers=(5, 3), array_rows=1, array_cols=1, batch_size=3, rng_lanes=1),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_element_is_in_exactly_one_crc_word(name):
    geo = EngineGeometry(CONFIGS[name])
    for batch in sorted({1, geo.config.batch_size, max(1, geo.config.batch_size - 2)}):
        for tensor in geo.crc_tensors:
            kind = tensor.rstrip("0123456789")
            if kind == "W":
                p = geo.plan[int(tensor[1:]) - 1]
                rows, cols = p.n_out, p.n_in
            elif kind == "E":
                rows, cols = batch, geo.plan[int(tensor[1:]) - 1].n_out
            else:
                rows, cols = batch, geo.config.layers[-1] if kind == "OUT" else 1
            seen = np.zeros((rows, cols), dtype=int)
            for r0, c0, dr, dc, n in geo.crc_layout(tensor, batch):
                assert 0 <= n <= geo.lanes
                for k in range(n):
                    seen[r0 + k * dr, c0 + k * dc] += 1
            assert (seen == 1).all(), (tensor, batch)


def test_a_changed_element_changes_the_crc():
    geo = EngineGeometry(CONFIGS["2x3_rng4"])
    w = np.random.default_rng(0).integers(-64, 65, (5, 7))
    base = tensor_crc(geo, "W1", w, 5)
    w[4, 6] += 1
    assert tensor_crc(geo, "W1", w, 5) != base


def test_crc_words_pad_masked_lanes_with_zeros():
    geo = EngineGeometry(CONFIGS["2x3_rng4"])   # 3 lanes, 4-byte elements
    out = np.arange(15).reshape(5, 3) - 7       # OUT: batch 5 x 3 classes
    words = tensor_words(geo, "OUT", out, 5)
    n_bytes = geo.crc_element_bits // 8
    values = np.frombuffer(words, dtype=f"<i{n_bytes}").reshape(-1, geo.lanes)
    # Tiles of 2 classes x 3 samples: rows (classes) 0, 1 of samples 0-2, then samples 3-4 ...
    assert values[0].tolist() == out[0:3, 0].tolist()
    assert values[1].tolist() == out[0:3, 1].tolist()
    assert values[2].tolist() == out[3:5, 0].tolist() + [0]


def _run_unit(lanes, bits, n, writes, register_ports=True, shapes=None):
    """Run ``writes`` (``(tensor, values, mask)``, a list of them for writes in the same cycle,
    or None for an idle cycle; ``"clear"``) through a :class:`TensorCrc`; the CRC of every
    tensor at the end, read through its read port."""
    dut = TensorCrc(lanes, bits, n, register_ports=register_ports, shapes=shapes)
    out = {}

    async def tb(ctx):
        for w in writes:
            for t in range(n):
                ctx.set(dut.port(t).valid, 0)
            if w == "clear":
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                continue
            for tensor, values, mask in ([] if w is None else w if isinstance(w, list)
                                         else [w]):
                port = dut.port(tensor)
                ctx.set(port.valid, 1)
                ctx.set(port.mask, mask)
                for k, v in enumerate(values):
                    ctx.set(port.values[k], v)
            await ctx.tick()
        for t in range(n):
            ctx.set(dut.port(t).valid, 0)
        # The CRCs asked for TensorCrc.LATENCY cycles after the last write, one per cycle.
        await ctx.tick().repeat(TensorCrc.LATENCY - 1)
        out["crcs"] = []
        for t in range(n):
            ctx.set(dut.read_addr, t)
            await ctx.tick()
            out["crcs"].append(ctx.get(dut.read_data))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out["crcs"]


def _words(writes, tensor, lanes, n_bytes):
    data = b""
    for w in writes:
        if w is None or w == "clear" or w[0] != tensor:
            continue
        _, values, mask = w
        for k in range(lanes):
            v = values[k] if mask >> k & 1 else 0
            data += (v & ((1 << (8 * n_bytes)) - 1)).to_bytes(n_bytes, "little")
    return data


@pytest.mark.parametrize("register_ports", [True, False])
def test_tensor_crc_unit_matches_zlib_per_tensor(register_ports):
    rng = np.random.default_rng(1)
    lanes, bits, n = 3, 16, 4
    writes = ["clear"]
    for tensor in (2, 0, 3):      # one tensor after the other, idle cycles between some
        for _ in range(int(rng.integers(1, 9))):
            values = [int(v) for v in rng.integers(-2**15, 2**15, lanes)]
            writes.append((tensor, values, int(rng.integers(0, 2**lanes))))
            if rng.random() < 0.3:
                writes.append(None)
    crcs = _run_unit(lanes, bits, n, writes, register_ports)
    for tensor in (0, 2, 3):
        assert crcs[tensor] == zlib.crc32(_words(writes, tensor, lanes, 2)), tensor
    assert crcs[1] == 0   # never written


@pytest.mark.parametrize("register_ports", [True, False])
def test_tensor_crc_restarts_after_clear_and_keeps_unwritten_tensors(register_ports):
    a = [(0, [1, 2], 3), (1, [5, -6], 1)]
    b = [(0, [7, 8], 2)]
    crcs = _run_unit(2, 8, 2, ["clear", *a, "clear", *b], register_ports)
    assert crcs[0] == zlib.crc32(_words(b, 0, 2, 1))
    assert crcs[1] == zlib.crc32(_words(a, 1, 2, 1))


@pytest.mark.parametrize("register_ports", [True, False])
def test_tensor_crc_counts_only_the_lowest_tensor_of_simultaneous_writes(register_ports):
    a = [(1, [3, -4], 3), (1, [9, 10], 1)]
    crcs = _run_unit(2, 8, 3, ["clear", [a[0], (2, [5, 6], 3)], a[1]], register_ports)
    assert crcs[1] == zlib.crc32(_words(a, 1, 2, 1))
    assert crcs[2] == 0


@pytest.mark.parametrize("register_ports", [True, False])
def test_tensor_crc_extends_narrow_elements_by_their_shape(register_ports):
    # Tensor 0 holds unsigned(4) elements (zero-extended), tensor 1 signed(5) (sign-extended).
    a = [(0, [15, 9], 3), (1, [-16, 7], 3), (1, [-1, 2], 2)]
    crcs = _run_unit(2, 8, 2, ["clear", *a], register_ports, shapes=[unsigned(4), signed(5)])
    assert crcs[0] == zlib.crc32(_words(a, 0, 2, 1))
    assert crcs[1] == zlib.crc32(_words(a, 1, 2, 1))


@pytest.mark.parametrize("register_ports", [True, False])
def test_tensor_crc_full_width_signed_elements_beside_narrow_ones(register_ports):
    # Tensor 0 fills the element (signed(8) of 8 bits), tensor 1 is narrower.
    a = [(0, [-128, 127], 3), (0, [-1, 5], 1), (1, [3, -4], 3)]
    crcs = _run_unit(2, 8, 2, ["clear", *a], register_ports, shapes=[signed(8), signed(4)])
    assert crcs[0] == zlib.crc32(_words(a, 0, 2, 1))
    assert crcs[1] == zlib.crc32(_words(a, 1, 2, 1))


def test_tensor_crc_refuses_shapes_wider_than_its_elements():
    with pytest.raises(ValueError, match="at most 8 bits"):
        TensorCrc(2, 8, 2, shapes=[signed(8), signed(9)])


class _FakeHost:
    """Answers read-backs from a dict of matrices (the engine's memories)."""

    def __init__(self, geometry, memories):
        self.geometry = geometry
        self.memories = memories

    async def read_outputs(self, batch):
        return self.memories["OUT"]

    async def read_predictions(self, batch):
        return self.memories["P"]

    async def read_errors(self, layer, batch):
        return self.memories[f"E{layer}"]

    async def read_matrix(self, target, layer, rows, cols):
        return self.memories[f"W{layer}"]


def _checked(config, memories):
    geo = EngineGeometry(config)
    return CheckedTrainer(_FakeHost(geo, memories), config), geo


def _tensors(config, batch, seed=0):
    rng = np.random.default_rng(seed)
    t = {"OUT": rng.integers(-999, 999, (batch, config.layers[-1])),
         "P": rng.integers(0, config.layers[-1], batch)}
    for p in config.plan:
        t[f"E{p.index}"] = rng.integers(-127, 128, (batch, p.n_out))
        t[f"W{p.index}"] = rng.integers(-64, 65, (p.n_out, p.n_in))
    return t


def test_matching_crcs_read_nothing_back():
    config = CONFIGS["2x3_rng4"]
    want = _tensors(config, 5)
    trainer, geo = _checked(config, {})
    crcs = [expected_crcs(geo, want, 5)[n] for n in geo.crc_tensors]
    asyncio.run(trainer.check(1, want, 5, {"crcs": crcs}))
    assert trainer.checks["readback_tensors"] == 0 and trainer.checks["crc_tensors"] == 6


def test_a_crc_mismatch_is_named_by_the_read_back():
    config = CONFIGS["2x3_rng4"]
    want = _tensors(config, 5)
    engine = {k: v.copy() for k, v in want.items()}
    engine["W2"][1, 3] += 2
    trainer, geo = _checked(config, engine)
    crcs = [expected_crcs(geo, engine, 5)[n] for n in geo.crc_tensors]
    with pytest.raises(EngineMismatch, match=r"step 4, phase update: W2\[1, 3\]"):
        asyncio.run(trainer.check(4, want, 5, {"crcs": crcs}))


def test_a_crc_mismatch_with_equal_elements_is_an_error():
    config = CONFIGS["2x3_rng4"]
    want = _tensors(config, 5)
    trainer, geo = _checked(config, want)
    crcs = [expected_crcs(geo, want, 5)[n] for n in geo.crc_tensors]
    crcs[geo.crc_tensors.index("E1")] ^= 1
    with pytest.raises(EngineMismatch, match="CRC of E1 .* every element read back equals"):
        asyncio.run(trainer.check(2, want, 5, {"crcs": crcs}))


def test_without_crcs_every_tensor_is_read_back():
    config = CONFIGS["2x3_rng4"]
    want = _tensors(config, 5)
    trainer, _ = _checked(config, want)
    asyncio.run(trainer.check(1, want, 5, {}))
    assert trainer.checks["readback_tensors"] == len(want)


@pytest.mark.parametrize("width", [8, 64, 256])
def test_crc32_taps_step_words_as_zlib_does(width):
    state_taps, data_taps = crc32_taps(width)
    rng = np.random.default_rng(width + 1)
    words = [int.from_bytes(rng.bytes(width // 8), "little") for _ in range(5)]
    register = 0xFFFFFFFF
    for word in words:
        register = sum((bin(register & state_taps[i]).count("1")
                        + bin(word & data_taps[i]).count("1")) % 2 << i for i in range(32))
    data = b"".join(w.to_bytes(width // 8, "little") for w in words)
    assert register ^ 0xFFFFFFFF == zlib.crc32(data) == crc32_parameters(width).compute(words)
