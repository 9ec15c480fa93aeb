# amaranth: UnusedElaboratable=no
"""The DSP mappings of the systolic array in simulation with the primitives' models: a generic
array and an array with ``dsp="ice40"`` (``SB_MAC16``, yosys' own model), ``"ecp5"``
(``MULT18X18D``) or ``"gowin"`` (``MULT9X9``; behavioural models of :mod:`intrain.sim.dsp_models`)
side by side in one design, run by :mod:`intrain.sim.tb_multiplier`: random tiles, tiles shorter
than the array, extreme operands, random input gaps and output back-pressure; every output row
of both arrays, in order, equals the exact product; without stalls the mapped array's rows come
out exactly its extra pipeline cycles later. Every 8-bit operand pair goes through both halves of
one ``SB_MAC16`` and through one ``MULT18X18D`` and one ``MULT9X9``. Mutants of the exported
Verilog (a wrong sign mode, a clock enable tied high) must fail. An engine with each mapping
trains steps bit-exact against the golden model with its cycle counters as predicted.
"""

from __future__ import annotations

import hashlib

import pytest

from intrain.config import Config
from intrain.hdl.engine import Engine
from intrain.sim.dsp_models import (
    ModelNotFound,
    blackbox_interface,
    model_sources,
    model_text,
)
from intrain.sim.runner import (
    CocotbTestFailure,
    _cache_root,
    _write_if_changed,
    export_verilog,
    run_cocotb,
)
from intrain.sim.tb_multiplier import ArrayPair, array_from_parameters
from intrain.sim.tools import available_simulators

TB = "intrain.sim.tb_multiplier"
FAMILIES = ("ice40", "ecp5", "gowin")
HAVE_ICARUS = "icarus" in available_simulators()
NO_ICARUS = "Icarus Verilog is not installed (apt-get install iverilog)"
#: Icarus builds these small designs in a second; a Verilator build takes about a minute.
SIM = "icarus" if HAVE_ICARUS else "verilator"

try:
    model_text("ice40")
    NO_MODELS = None
except ModelNotFound as e:
    NO_MODELS = f"the vendor cell library is missing: {e}"

pytestmark = pytest.mark.skipif(NO_MODELS is not None, reason=NO_MODELS or "")


def _sources(dsp, name, text):
    """Write the design ``text`` and the models of ``dsp``'s primitives into a folder named by
    their content (so an unchanged design re-uses its build); returns the paths."""
    models = model_sources(dsp)
    key = hashlib.sha256("\0".join([text, *models.values()]).encode()).hexdigest()[:16]
    folder = _cache_root() / "dsp-sources" / f"{name}-{key}"
    return [_write_if_changed(folder / f"{name}.v", text),
            *(_write_if_changed(folder / file, model) for file, model in models.items())]


def _pair_text(params):
    shapes = array_from_parameters(params)
    top = ArrayPair(params["rows"], params["cols"], params["dsp"], a_shape=shapes.a_shape,
                    b_shape=shapes.b_shape, acc_width=shapes.acc_width)
    return export_verilog(top, "top")


def run_pair(params, testcase, sim="icarus", mutate=None):
    text = _pair_text(params)
    if mutate is not None:
        old, new = mutate
        assert old in text, f"{old!r} is not in the exported Verilog"
        text = text.replace(old, new)
    return run_cocotb(_sources(params["dsp"], "top", text), toplevel="top", test_module=TB,
                      sim=sim, testcase=testcase, parameters=params, seed=params.get("seed", 0))


def _params(dsp, rows, cols, **extra):
    ks = [1, max(1, rows - 1), rows, cols, 2, 3 * rows + 2, 1, rows + 1, 5 * max(rows, cols), 1]
    params = {"dsp": dsp, "rows": rows, "cols": cols, "acc_width": 32, "tiles": ks * 2,
              "seed": rows * 7 + cols}
    params.update(extra)
    return params


SIMS = [pytest.param("verilator", marks=pytest.mark.slow),
        pytest.param("icarus", marks=pytest.mark.skipif(not HAVE_ICARUS, reason=NO_ICARUS))]


@pytest.mark.parametrize("dsp", FAMILIES)
def test_models_have_the_primitives_ports_and_parameters(dsp):
    from intrain.sim.dsp_models import _interface

    assert _interface(model_text(dsp)) == blackbox_interface(dsp)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize(("dsp", "rows", "cols"), [
    ("ice40", 3, 3),   # 9 PEs: the last SB_MAC16 has one half unused
    ("ice40", 2, 4),
    ("ecp5", 3, 2),
    ("gowin", 2, 3),
])
def test_products_equal_the_generic_array_under_stalls(dsp, rows, cols, sim):
    run_pair(_params(dsp, rows, cols), "products_match_generic", sim)


@pytest.mark.parametrize("dsp", FAMILIES)
def test_rows_come_out_the_extra_pipeline_cycles_later(dsp):
    run_pair(_params(dsp, 3, 3), "timing_follows_the_pipeline", SIM)


@pytest.mark.parametrize("dsp", FAMILIES)
def test_one_element_arrays_and_mixed_signedness(dsp):
    run_pair(_params(dsp, 1, 1), "products_match_generic", SIM)
    run_pair(_params(dsp, 1, 3, a_signed=False, b_width=6), "products_match_generic", SIM)


@pytest.mark.parametrize("dsp", [
    "ice40", pytest.param("ecp5", marks=pytest.mark.slow),
    pytest.param("gowin", marks=pytest.mark.slow)])
def test_every_operand_pair_through_one_dsp(dsp):
    """65,536 tiles of one beat on a 1x2 array: both PEs (both halves of one SB_MAC16) see
    every pair of signed 8-bit operands (about 20 s on Icarus per family)."""
    run_pair(_params(dsp, 1, 2, tiles=[4, 1, 7], exhaustive=True, valid_prob=0.95,
                     ready_prob=0.95), "products_match_generic", SIM)


@pytest.mark.parametrize(("dsp", "old", "new"), [
    ("ice40", ".A_SIGNED(1'h1)", ".A_SIGNED(1'h0)"),
    ("ice40", ".B_SIGNED(1'h1)", ".B_SIGNED(1'h0)"),
    ("ice40", ".CE(en)", ".CE(1'h1)"),
    # Not SIGNEDA/SIGNEDB: operands sign-extended to 18 bits give the right 16 low bits of the
    # product either way (modulo 2 ** 18); a missing pipeline register is a fault.
    ("ecp5", '.REG_PIPELINE_CLK("CLK0")', '.REG_PIPELINE_CLK("NONE")'),
    ("ecp5", ".CE0(en)", ".CE0(1'h1)"),
    ("gowin", ".ASIGN(1'h1)", ".ASIGN(1'h0)"),
    ("gowin", ".CE(en)", ".CE(1'h1)"),
])
def test_a_wrong_mapping_fails(dsp, old, new):
    with pytest.raises(CocotbTestFailure, match=f"{dsp} array: tile"):
        run_pair(_params(dsp, 2, 3), "products_match_generic", SIM, mutate=(old, new))


def _engine_config():
    return Config(layers=(7, 5, 3), bits="8-8-8-8", array_rows=2, array_cols=3, batch_size=5,
                  lr_schedule=((0, 2),), epochs=1, seed=3)


def _spram_config():
    """A 1x1 engine with its input and first weights in single-port RAM (on the iCE40 the
    ``SB_SPRAM256KA`` model), a batch of 4: every weight written back meets a read."""
    return Config(layers=(9, 5, 3), bits="2-8-8-8", array_rows=1, array_cols=1, rng_lanes=1,
                  batch_size=4, recompute_gradients=(1,), spram=("W1", "A0"),
                  lr_schedule=((0, 2),), epochs=1, seed=3)


def _run_engine(dsp, config, mutate=None):
    engine = Engine(config, dsp=dsp)
    text = export_verilog(engine, "engine")
    if mutate is not None:
        old, new = mutate
        assert old in text, f"{old!r} is not in the exported Verilog"
        text = text.replace(old, new)
    params = {"engine": {"config": config.to_dict(), "dsp": dsp, "steps": 3, "seed": 1}}
    run_cocotb(_sources(dsp, "engine", text), toplevel="engine", test_module=TB,
               sim=SIM, testcase="engine_steps_match_golden", parameters=params, seed=1)


@pytest.mark.parametrize(("dsp", "config"), [
    *((dsp, _engine_config) for dsp in FAMILIES), ("ice40", _spram_config)])
def test_engine_trains_bit_exact_with_predicted_cycles(dsp, config):
    _run_engine(dsp, config())


def test_an_engine_whose_spram_takes_no_writes_fails():
    """(The packing into SPRAM words: tests/test_single_port_vendor.py.)"""
    with pytest.raises(CocotbTestFailure):   # (it reads the RAM's undefined words)
        _run_engine("ice40", _spram_config(), mutate=(".WREN(port_write)", ".WREN(1'h0)"))
