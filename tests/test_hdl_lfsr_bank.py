# amaranth: UnusedElaboratable=no
"""LfsrBank against ``generate`` and ``LfsrBank`` of the golden model, word for word, with random
gaps between draws and reseeding in the middle of a run."""

from __future__ import annotations

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from intrain.config import Config
from intrain.golden.lfsr import LfsrBank as GoldenBank
from intrain.golden.lfsr import generate
from intrain.hdl import LfsrBank
from intrain.lfsr_spec import LfsrSpec


def run_bank(dut, cycles, *, ready_prob=0.7, loads=None, seed=0):
    """Simulate ``cycles`` cycles with random ``o.ready``.

    ``loads`` maps a cycle to ``(seeds, ready)``: a load in that cycle, with ``o.ready`` forced.
    Returns the words drawn by each lane and, for each load, the number of draws taken before
    the new seeds apply (the draw of the load cycle itself included).
    """
    rng = random.Random(seed)
    loads = loads or {}
    words = [[] for _ in range(dut.lanes)]
    boundaries = []

    async def testbench(ctx):
        for cycle in range(cycles):
            ready = rng.random() < ready_prob
            if cycle in loads:
                seeds, ready = loads[cycle]
                ctx.set(dut.load.payload, seeds)
                ctx.set(dut.load.valid, 1)
            ctx.set(dut.o.ready, ready)
            _, _, valid, o_ready, payload, l_valid, l_ready = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload, dut.load.valid, dut.load.ready)
            assert valid, "the bank always presents a word"
            if o_ready:
                for n in range(dut.lanes):
                    words[n].append(payload[n])
            if l_valid and l_ready:
                boundaries.append(len(words[0]))
            ctx.set(dut.load.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return words, boundaries


def expected(spec, segments):
    """The concatenated reference sequences: ``segments`` is a list of ``(seed, count)``."""
    out = []
    for seed, count in segments:
        out += generate(spec, seed, count)
    return out


def test_default_bank_matches_generate_with_stalls_and_reseeds():
    spec = LfsrSpec()
    seeds = spec.lane_seeds(3, 4)
    new = (0x12345678, 0xFFFFFFFF, 0x00000001, 0x80000000)
    zero_one = (0xDEADBEEF, 0x0BADF00D, 0, 0x00C0FFEE)   # a zero seed is replaced
    dut = LfsrBank(spec, seeds)
    loads = {1700: (new, True),       # a draw in the cycle of the load returns the old word
             3400: (zero_one, False)}
    words, (b1, b2) = run_bank(dut, 5200, ready_prob=0.7, loads=loads, seed=1)
    assert len(words[0]) > 3000
    for n in range(4):
        after_zero = zero_one[n] or seeds[n]
        want = expected(spec, [(seeds[n], b1), (new[n], b2 - b1),
                               (after_zero, len(words[n]) - b2)])
        assert words[n] == want, f"lane {n}"


def test_bank_matches_the_vectorised_golden_bank():
    config = Config(rng_lanes=8, seed=17)
    dut = LfsrBank.from_config(config)
    assert dut.seeds == config.rng_seeds and dut.spec == config.lfsr
    words, _ = run_bank(dut, 400, ready_prob=0.5, seed=2)
    count = len(words[0])
    golden = GoldenBank(config.lfsr, config.rng_seeds).draw(count)
    for n in range(8):
        assert words[n] == [int(v) for v in golden[:, n]], f"lane {n}"


@pytest.mark.parametrize("spec", [
    LfsrSpec(16, (16, 15, 13, 4), 16),      # one draw leaps a whole state
    LfsrSpec(16, (16, 15, 13, 4), 5),       # a draw width that is not a power of two
    LfsrSpec(64, (64, 63, 61, 60), 16),
    LfsrSpec(32, (32, 22, 2, 1), 1),        # one step per draw
])
def test_other_generators_match_generate(spec):
    seeds = (1, spec.mask, 0x5A5A & spec.mask)
    dut = LfsrBank(spec, seeds)
    words, (b,) = run_bank(dut, 700, ready_prob=0.8, loads={300: ((0, 0, 0), True)}, seed=3)
    for n in range(3):
        # Loading all zeros restarts every lane from its power-on seed.
        assert words[n] == expected(spec, [(seeds[n], b), (seeds[n], len(words[n]) - b)])


def test_the_state_holds_while_no_draw_is_taken():
    spec = LfsrSpec()
    dut = LfsrBank(spec, (0xACE1, 0xBEEF))
    words, _ = run_bank(dut, 300, ready_prob=0.05, seed=4)
    assert words[0] == generate(spec, 0xACE1, len(words[0]))
    assert words[1] == generate(spec, 0xBEEF, len(words[1]))


def test_a_long_run_never_reaches_the_zero_state():
    spec = LfsrSpec(8, (8, 6, 5, 4), 3)   # period 255: a run of 300 draws wraps around it
    dut = LfsrBank(spec, (1,))
    words, _ = run_bank(dut, 300, ready_prob=1.0)
    assert words[0] == generate(spec, 1, 300)
    state = 1
    for _ in range(300):
        _, state = spec.draw(state)
        assert state != 0


def test_converts_to_verilog():
    text = verilog.convert(LfsrBank(LfsrSpec(), (1, 2, 3)), name="lfsr_bank")
    assert "module lfsr_bank" in text
    for port in ("o__payload", "o__valid", "o__ready", "load__payload", "load__valid"):
        assert port in text


@pytest.mark.parametrize(("spec", "seeds", "exc", "match"), [
    ((32, (32, 22, 2, 1), 16), (1,), TypeError, r"LFSR specification must be an LfsrSpec"),
    (LfsrSpec(), 5, TypeError, r"Seeds must be a sequence of integers, not 5"),
    (LfsrSpec(), (), ValueError, r"Seeds must give at least one lane"),
    (LfsrSpec(), (1, 0), ValueError, r"Seed of lane 1 must be from 1 to 4294967295 .*not 0"),
    (LfsrSpec(), (1 << 32,), ValueError, r"Seed of lane 0 must be from 1 to 4294967295"),
    (LfsrSpec(), (1, 2.0), TypeError, r"Seed of lane 1 must be an integer, not 2\.0"),
    (LfsrSpec(), (True,), TypeError, r"Seed of lane 0 must be an integer, not True"),
])
def test_constructor_rejects_invalid_arguments(spec, seeds, exc, match):
    with pytest.raises(exc, match=match):
        LfsrBank(spec, seeds)
