# amaranth: UnusedElaboratable=no
"""The six hardware blocks against their golden twins in cocotb, on their exported Verilog.

Each test exports one block (built from the default configuration as ``intrain generate`` builds
it, or a narrow variant whose whole input space is small enough to check exhaustively), runs the
cocotb module :mod:`intrain.sim.tb_blocks` on it with Verilator and with Icarus Verilog (skipped
when it is not installed), and fails with the testbench's message when a case differs. Every
design gets its own build folder, so the tests run in parallel (``pytest -n``).

Verilator runs the full counts by default: at least 100,000 random cases per block, every case
of the narrow variants, a million draws per lane of the LFSR bank and the full period of a small
bank. Icarus is about 15 times slower per clock: by default it checks a sample of 5,000 cases
per design; the full counts run with ``pytest -m slow``.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field

import pytest
from amaranth import Module
from amaranth.lib import wiring

from intrain.config import Config
from intrain.generate import build_block
from intrain.hdl import LfsrBank, MaxAbs, ShiftQuantizer, StochasticRounder
from intrain.lfsr_spec import LfsrSpec
from intrain.sim.runner import CocotbTestFailure, run_cocotb
from intrain.sim.tb_blocks import block_args
from intrain.sim.tools import available_simulators

TB = "intrain.sim.tb_blocks"
NO_ICARUS = "Icarus Verilog is not installed (apt-get install iverilog)"
HAVE_ICARUS = "icarus" in available_simulators()
ICARUS = pytest.param("icarus", marks=pytest.mark.skipif(not HAVE_ICARUS, reason=NO_ICARUS))
SIMS = ["verilator", ICARUS]

CONFIG = Config()
STREAM_TESTS = ["stream_matches_twin", "stream_under_backpressure",
                "stream_one_element_per_cycle"]

#: Cases of the default Icarus runs (per design: exhaustive sample and random cases).
ICARUS_CASES = 5000
#: LFSR draws per lane in the default runs.
LFSR_DRAWS = {"verilator": 1_000_000, "icarus": 5000}
#: A small generator whose whole period (65,535 draws) the hardware runs through.
SMALL_LFSR = LfsrSpec(16, (16, 15, 13, 4), 16)


@dataclass(frozen=True)
class Design:
    """One block as built for a test, and how much of it to check on Verilator (``exhaustive``:
    every case of the bench's exhaustive set; ``random``: random cases). ``slow`` designs run
    only in the slow selection."""

    id: str
    make: object  # () -> component
    exhaustive: bool = False
    random: int = 0
    slow: bool = False
    extra: dict = field(default_factory=dict)

    def component(self):
        return self.make()


DESIGNS = [
    # The blocks of the default configuration, as `intrain generate` builds them.
    Design("qa", lambda: build_block("qa", CONFIG), exhaustive=True),  # every 14-bit input
    Design("qe", lambda: build_block("qe", CONFIG), random=100_000),   # 16-bit, shifts -7..8
    Design("log2_round", lambda: build_block("log2_round", CONFIG), exhaustive=True,
           random=100_000),                                            # every 16-bit input
    Design("max_abs", lambda: build_block("max_abs", CONFIG), random=100_000),
    Design("stochastic_rounder", lambda: build_block("stochastic_rounder", CONFIG),
           random=100_000),
    Design("weight_updater", lambda: build_block("weight_updater", CONFIG, 1), exhaustive=True,
           random=100_000),                                  # every W x dW in [-160, 160]
    # Narrow variants whose whole input space is checked.
    Design("shift_quantizer_8", lambda: ShiftQuantizer(8, 4, min_shift=-4, max_shift=10,
                                                       clip_mask=True), exhaustive=True),
    Design("stochastic_rounder_8", lambda: StochasticRounder(8, 4, max_shift=12, min_shift=-2),
           exhaustive=True),                                 # every g x shift x draw
    Design("max_abs_8", lambda: MaxAbs(8), exhaustive=True, slow=True),
    Design("weight_updater_w4", lambda: build_block("weight_updater", Config(bits="4-8-8-8"), 1),
           exhaustive=True, slow=True),                      # T of 4-bit weights: t_max = 7
]
DESIGN_IDS = {d.id: d for d in DESIGNS}
DEFAULT_DESIGNS = [d.id for d in DESIGNS if not d.slow]
SLOW_DESIGNS = [d.id for d in DESIGNS if d.slow]


def _seed(name: str) -> int:
    """A fixed seed per design, so that a failure repeats; ``$INTRAIN_TB_SEED`` changes them all
    (to explore more cases)."""
    return zlib.crc32(f"{name}{os.environ.get('INTRAIN_TB_SEED', '')}".encode())


def run_block(component, sim, *, testcase, toplevel=None, design=None, **params):
    """Run the tests ``testcase`` of the cocotb module on ``component``; ``params`` go to the
    testbench with the block's name and arguments."""
    block, args = block_args(component)
    seed = params.setdefault("seed", _seed(toplevel or block))
    return run_cocotb(design if design is not None else component, toplevel=toplevel or block,
                      test_module=TB, sim=sim, testcase=testcase, seed=seed,
                      parameters={"block": block, "args": args, **params})


def _counts(design: Design, sim: str, full: bool) -> dict:
    if sim == "verilator" or full:
        return {"exhaustive": design.exhaustive, "random": design.random}
    if design.exhaustive and design.random:
        return {"exhaustive": ICARUS_CASES // 2, "random": ICARUS_CASES // 2}
    if design.exhaustive:
        return {"exhaustive": ICARUS_CASES, "random": 0}
    return {"exhaustive": False, "random": ICARUS_CASES}


def _check_design(design: Design, sim: str, full: bool = False):
    counts = _counts(design, sim, full)
    small = sim == "icarus" and not full
    result = run_block(design.component(), sim, testcase=STREAM_TESTS, toplevel=design.id,
                       stall=0.01, backpressure=500 if small else 2000, backpressure_stall=0.5,
                       full_rate=200, **counts, **design.extra)
    assert (result.tests, result.passed) == (3, 3)


# ------------------------------------------------------------------------------------------------
# Every block against its twin

@pytest.mark.parametrize("design", DEFAULT_DESIGNS)
@pytest.mark.parametrize("sim", SIMS)
def test_block_matches_its_twin(sim, design):
    _check_design(DESIGN_IDS[design], sim)


@pytest.mark.slow
@pytest.mark.parametrize("design", SLOW_DESIGNS)
@pytest.mark.parametrize("sim", SIMS)
def test_narrow_block_matches_its_twin(sim, design):
    _check_design(DESIGN_IDS[design], sim)


@pytest.mark.slow
@pytest.mark.parametrize("design", [d.id for d in DESIGNS])
def test_block_matches_its_twin_in_full_on_icarus(design):
    if not HAVE_ICARUS:
        pytest.skip(NO_ICARUS)
    _check_design(DESIGN_IDS[design], "icarus", full=True)


@pytest.mark.slow
def test_qe_matches_its_twin_for_every_input_and_shift():
    # 65,536 inputs x 16 shifts: over a million cases.
    result = run_block(build_block("qe", CONFIG), "verilator", testcase="stream_matches_twin",
                       toplevel="qe", exhaustive=True, stall=0.0)
    assert result.passed == 1


# ------------------------------------------------------------------------------------------------
# The LFSR bank

def _lfsr_bank():
    return build_block("lfsr_bank", CONFIG)


def _small_bank():
    return LfsrBank(SMALL_LFSR, (1, 0xACE1, 0xFFFF, 0x8000))


@pytest.mark.parametrize("sim", SIMS)
def test_lfsr_bank_matches_its_twin(sim):
    result = run_block(_lfsr_bank(), sim, draws=LFSR_DRAWS[sim], ready_cycles=20_000 if
                       sim == "verilator" else 2000,
                       testcase=["lfsr_words_match_twin", "lfsr_draws_only_when_ready",
                                 "lfsr_reload"])
    assert (result.tests, result.passed) == (3, 3)


@pytest.mark.slow
def test_lfsr_bank_matches_its_twin_over_a_million_draws_on_icarus():
    if not HAVE_ICARUS:
        pytest.skip(NO_ICARUS)
    result = run_block(_lfsr_bank(), "icarus", draws=1_000_000,
                       testcase="lfsr_words_match_twin")
    assert result.passed == 1


@pytest.mark.parametrize("sim", [
    "verilator",
    pytest.param("icarus", marks=[pytest.mark.slow, pytest.mark.skipif(not HAVE_ICARUS,
                                                                       reason=NO_ICARUS)]),
])
def test_small_lfsr_bank_runs_its_full_period(sim):
    result = run_block(_small_bank(), sim, toplevel="lfsr_bank_16", testcase="lfsr_full_period")
    assert result.passed == 1


# ------------------------------------------------------------------------------------------------
# Statistics

#: ``(g, shift)``: fractions from 1/8 to 7/8, a tie (2.5), a third and a value beyond 12.
UNBIASED_VALUES = [(1, 3), (-3, 2), (5, 1), (-100, 7), (21845, 16), (12345, 10), (-7, 4),
                   (-1, 1)]


def _unbiased(sim, trials, **params):
    spec = CONFIG.lfsr
    return run_block(build_block("stochastic_rounder", CONFIG), sim,
                     testcase="rounding_is_unbiased", trials=trials,
                     values=UNBIASED_VALUES, stall=0.0,
                     lfsr={"width": spec.width, "taps": list(spec.taps),
                           "draw_bits": spec.draw_bits},
                     rng_seeds=list(CONFIG.rng_seeds), **params)


@pytest.mark.parametrize("sim", SIMS)
def test_stochastic_rounding_is_unbiased(sim):
    result = _unbiased(sim, 20_000 if sim == "verilator" else 2000)
    assert result.passed == 1


# ------------------------------------------------------------------------------------------------
# The checks can fail

def test_a_wrong_rounding_model_fails_the_run():
    # Ties rounded up instead of to even: the exhaustive run must catch it.
    with pytest.raises(CocotbTestFailure) as e:
        _check_exhaustive_with_model("half_up")
    message = str(e.value)
    assert "stream_matches_twin" in message and "differ from the twin (half_up)" in message
    assert "exhaustive case" in message and "expected value=" in message
    assert ", got value=" in message


def _check_exhaustive_with_model(model):
    design = DESIGN_IDS["shift_quantizer_8"]
    return run_block(design.component(), "verilator", testcase="stream_matches_twin",
                     toplevel=design.id, exhaustive=True, model=model)


def test_a_wrong_lfsr_seed_fails_the_run():
    bank = _small_bank()
    wrong = [bank.seeds[0] ^ 2, *bank.seeds[1:]]
    with pytest.raises(CocotbTestFailure, match=r"draw 0 of lane 0: expected 0x3, got 0x1"):
        run_block(bank, "verilator", toplevel="lfsr_bank_16", testcase="lfsr_words_match_twin",
                  draws=1000, twin_seeds=wrong)


def test_a_biased_expectation_fails_the_statistics():
    with pytest.raises(CocotbTestFailure, match="more than 5 sigma"):
        _unbiased("verilator", 2000, bias=1 / 16)


class DropsUnderBackpressure(wiring.Component):
    """A broken wrapper of a block: its output stream ignores ``ready`` (the block's output is
    always read), so every element presented while the consumer stalls is lost."""

    def __init__(self, inner):
        self._inner = inner
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        if hasattr(inner, "shift"):
            m.d.comb += inner.shift.eq(self.shift)
        m.d.comb += [
            self.o.payload.eq(inner.o.payload),
            self.o.valid.eq(inner.o.valid),
            inner.o.ready.eq(1),
        ]
        return m


def test_a_block_that_drops_data_under_backpressure_fails():
    inner = DESIGN_IDS["shift_quantizer_8"].component()
    broken = DropsUnderBackpressure(inner)
    # Icarus builds this one-off design in a second, Verilator in about twenty.
    sim = "icarus" if HAVE_ICARUS else "verilator"
    with pytest.raises(CocotbTestFailure, match="stream_under_backpressure: (.*differ|timed out)"):
        run_block(inner, sim, design=broken, toplevel="drops_under_backpressure",
                  testcase="stream_under_backpressure", backpressure=300)
