# amaranth: UnusedElaboratable=no
"""Single-port banks on the iCE40's ``SB_SPRAM256KA`` (yosys' model) in Icarus Verilog:
random legal reads and writes against a dictionary (:mod:`intrain.sim.tb_single_port`), with
one, two and four elements packed into each 16-bit word, with and without the hold register;
mutants of the exported Verilog (a write mask that clobbers the word's other elements, no
write at all, no chip select) must fail."""

from __future__ import annotations

import hashlib

import pytest

from intrain.hdl.single_port import SinglePortBank
from intrain.sim.dsp_models import ModelNotFound, spram_model_text
from intrain.sim.runner import (
    CocotbTestFailure,
    _cache_root,
    _write_if_changed,
    export_verilog,
    run_cocotb,
)
from intrain.sim.tools import available_simulators

TB = "intrain.sim.tb_single_port"

try:
    spram_model_text()
    NO_MODEL = None
except ModelNotFound as e:
    NO_MODEL = f"the vendor cell library is missing: {e}"

pytestmark = [
    pytest.mark.skipif(NO_MODEL is not None, reason=NO_MODEL or ""),
    pytest.mark.skipif("icarus" not in available_simulators(),
                       reason="Icarus Verilog is not installed (apt-get install iverilog)"),
]


def run_bank(depth, width, per_word, hold, *, mutate=None, cycles=3000, seed=1):
    bank = SinglePortBank(width, depth, kind="ice40", hold=hold, per_word=per_word)
    text = export_verilog(bank, "bank")
    if mutate is not None:
        old, new = mutate
        assert old in text, f"{old!r} is not in the exported Verilog"
        text = text.replace(old, new)
    model = spram_model_text()
    key = hashlib.sha256((text + "\0" + model).encode()).hexdigest()[:16]
    folder = _cache_root() / "spram-sources" / key
    sources = [_write_if_changed(folder / "bank.v", text),
               _write_if_changed(folder / "spram_model.v", model)]
    params = {"depth": depth, "width": width, "per_word": per_word, "hold": hold,
              "cycles": cycles, "seed": seed}
    run_cocotb(sources, toplevel="bank", test_module=TB, sim="icarus",
               testcase="bank_matches_model", parameters=params, seed=seed)


@pytest.mark.parametrize(("depth", "width", "per_word", "hold"), [
    (200, 8, 2, True),     # 8-bit weights two to a word, writes held behind reads
    (200, 8, 1, True),
    (300, 4, 4, True),     # four 4-bit fields a word
    (150, 8, 2, False),    # the input's bank: no hold register
    (100, 13, 1, True),    # an element on four nibbles, three bits unused
])
def test_bank_reads_what_was_written(depth, width, per_word, hold):
    run_bank(depth, width, per_word, hold)


@pytest.mark.parametrize(("old", "new"), [
    (".MASKWREN(", ".MASKWREN(4'hf | "),     # a write clobbers the word's other element
    (".WREN(port_write)", ".WREN(1'h0)"),     # nothing is written
    (".CHIPSELECT(", ".CHIPSELECT(1'h0 & "),  # the RAM never answers
])
def test_a_wrong_spram_mapping_fails(old, new):
    with pytest.raises(CocotbTestFailure):
        run_bank(200, 8, 2, True, mutate=(old, new), cycles=600)
