# amaranth: UnusedElaboratable=no
"""Engine: the exported Verilog is defined from reset on in every simulator.

Icarus Verilog, run with ``-g2012`` as cocotb does, evaluates an ``always @*`` block only when
one of its inputs changes (the trigger register that Yosys adds is initialized without an
event), so combinational logic written with ``m.Switch`` or ``m.If`` whose inputs keep their
initial values stays X and poisons the control. The only ``always @*`` blocks the engine may
export are the next-state logic of registers, which the reset re-evaluates; its combinational
selections are chains of ``Mux`` (continuous assignments). Verilator treats X as 0, so only this
structural check (and a run on Icarus) catches a regression."""

from __future__ import annotations

import re

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from intrain.config import Config
from intrain.hdl.engine import Engine
from intrain.sim.runner import export_verilog

CONFIGS = {
    "one_layer": dict(layers=(6, 3), array_rows=2, array_cols=2, batch_size=4),
    "two_layers": dict(layers=(7, 5, 3), bits="2-8-8-8", array_rows=2, array_cols=3,
                       batch_size=5),
    "three_layers_4x4": dict(layers=(10, 9, 4, 3), array_rows=4, array_cols=4, batch_size=6),
}

_BLOCK = re.compile(r"always @\*(?: begin\n.*?\n  end\n|\n[^\n]*\n)", re.S)


def processes_without_reset(text):
    """``(module, block)`` of every ``always @*`` block of ``text`` that does not read ``rst``."""
    found = []
    for module in re.split(r"\n(?=module )", text):
        name = module.split("(", 1)[0].removeprefix("module ").strip()
        found += [(name, block) for block in _BLOCK.findall(module)
                  if not re.search(r"\brst\b", block)]
    return found


class _Table(wiring.Component):
    """A constant table written with ``m.Switch``: the kind of logic the check must find."""

    def __init__(self):
        super().__init__({"sel": In(2), "out": Out(4)})

    def elaborate(self, platform):
        m = Module()
        with m.Switch(self.sel):
            for k in range(4):
                with m.Case(k):
                    m.d.comb += self.out.eq(k + 3)
        return m


def test_the_check_finds_a_combinational_switch():
    assert len(processes_without_reset(export_verilog(_Table(), "table"))) == 1


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_engine_has_no_combinational_always_block(name):
    text = export_verilog(Engine(Config(**CONFIGS[name], epochs=1)), "engine")
    assert processes_without_reset(text) == []
