"""Every block `intrain generate` knows builds from the default and a full-INT8 configuration,
and its Verilog passes `verilator --lint-only -Wall` (with Amaranth's waivers) without errors."""

import pytest

from intrain.config import Config
from intrain.generate import BLOCKS, generate
from intrain.sim.tools import verilator_bin

CONFIGS = {"default": Config(), "int8": Config(bits="8-8-8-8", layers=(64, 48, 10))}


@pytest.mark.skipif(verilator_bin() is None, reason="Verilator is not installed")
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_every_block_generates_lint_clean_verilog(tmp_path, name, config):
    out = generate(name, CONFIGS[config], tmp_path / f"{name}.v", lint=True)
    text = out.read_text()
    assert "module" in text and "endmodule" in text
