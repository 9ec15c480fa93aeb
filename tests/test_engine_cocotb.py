"""The training engine on its exported Verilog: training steps through the host ports, every
step checked against the golden model, on Verilator's model in this process (the direct
harness, :mod:`intrain.sim.verilated`) and in the cocotb testbench (``intrain.sim.tb_engine``,
Verilator and Icarus).

Every configuration is its own design and build folder, so the tests run in parallel. The sweep
covers array shapes 1x1, 2x3, 4x4 and 8x8, layers that are not multiples of the array, batch 1
and larger, 2-8-8-8 and 8-8-8-8; the default network runs 20 steps on the built-in digits. A
full epoch of the default network runs with ``pytest -m slow`` (and in ``bench/sim.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from intrain.cli import main
from intrain.config import Config
from intrain.errors import ConfigError, SimulationFailed
from intrain.sim.engine_run import run_engine
from intrain.sim.tools import available_simulators

NO_ICARUS = "Icarus Verilog is not installed (apt-get install iverilog)"
HAVE_ICARUS = "icarus" in available_simulators()


def _data(tmp_path, n_features, n_classes, n=120, seed=0):
    """A small random ``.npz`` data set (the engine sees only quantized inputs and labels)."""
    rng = np.random.default_rng(seed)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.uniform(-1, 1, (n, n_features)),
             y=np.arange(n) % n_classes)
    return str(path)


SWEEP = {
    # name: (layers, bits, rows, cols, batch_size, lr schedule, steps)
    "1x1_5-4-3_int8_batch1": ((5, 4, 3), "8-8-8-8", 1, 1, 1, ((0, 1),), 6),
    "2x3_7-5-3_ternary": ((7, 5, 3), "2-8-8-8", 2, 3, 5, ((0, 2),), 5),
    "4x4_10-9-4-3_int8": ((10, 9, 4, 3), "8-8-8-8", 4, 4, 6, ((0, -1),), 4),
    "4x4_3-6-2_short_layers": ((3, 6, 2), "2-8-8-8", 4, 4, 7, ((0, 3),), 4),
    "8x8_20-17-10_ternary": ((20, 17, 10), "2-8-8-8", 8, 8, 12, ((0, 0),), 3),
    # The first and last layers' gradients recomputed, not stored (recompute_gradients).
    "4x3_11-9-4-3_recompute": ((11, 9, 4, 3), "8-8-8-8", 4, 3, 6, ((0, 1),), 4, (1, 3)),
    # The input and the first layer's weights in single-port RAM (spram), batch 4: every
    # weight written back meets a read.
    "1x1_9-5-3_spram": ((9, 5, 3), "2-8-8-8", 1, 1, 4, ((0, 2),), 4, (1,), ("W1", "A0")),
}


def _sweep_config(name):
    layers, bits, rows, cols, batch, lr, steps, *memory = SWEEP[name]
    recompute, spram = (list(memory) + [(), ()])[:2]
    return Config(layers=layers, bits=bits, array_rows=rows, array_cols=cols, batch_size=batch,
                  lr_schedule=lr, epochs=1, seed=len(name), recompute_gradients=recompute,
                  spram=spram), steps


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_training_steps_are_bit_exact_on_verilator(name, tmp_path):
    config, steps = _sweep_config(name)
    data = _data(tmp_path, config.layers[0], config.layers[-1])
    r = run_engine(config, data=data, steps=steps, float_baseline=False, progress=False)
    assert r["bit_exact"] and r["steps"] == r["rtl_steps"] == steps
    pes = config.array_rows * config.array_cols
    assert 0 < r["mac_cycles"] <= pes * r["cycles"]
    assert sum(p["cycles"] for p in r["phases"].values()) == r["cycles"]


@pytest.mark.parametrize("name", ["2x3_7-5-3_ternary", "4x4_10-9-4-3_int8",
                                  "4x3_11-9-4-3_recompute"])
def test_cocotb_testbench_on_verilator_agrees_with_the_direct_harness(name, tmp_path):
    config, steps = _sweep_config(name)
    data = _data(tmp_path, config.layers[0], config.layers[-1])
    runs = {h: run_engine(config, data=data, steps=steps, float_baseline=False, progress=False,
                          harness=h) for h in ("cocotb", "direct")}
    assert {h: r["harness"] for h, r in runs.items()} == {"cocotb": "cocotb", "direct": "direct"}
    for r in runs.values():
        assert r["bit_exact"] and r["rtl_steps"] == steps
    same = ("cycles", "mac_cycles", "phases", "test_accuracy", "checks")
    assert {k: runs["cocotb"][k] for k in same} == {k: runs["direct"][k] for k in same}


@pytest.mark.parametrize("harness", ["direct", "cocotb"])
def test_memory_faults_at_a_high_rate_stay_bit_exact(harness, tmp_path, capsys):
    # One bit in 50 flips after every update: the engine's fault pass and the golden model's
    # flip the same bits, checked by the CRCs of every step and a full read-back every 2 steps.
    config, _ = _sweep_config("2x3_7-5-3_ternary")
    config = config.replace(bit_error_rate=0.02)
    data = _data(tmp_path, config.layers[0], config.layers[-1])
    r = run_engine(config, data=data, steps=4, float_baseline=True, progress=False,
                   harness=harness, check_every=2)
    assert r["bit_exact"] and r["rtl_steps"] == 4
    assert r["checks"]["readback_tensors"] > 0
    assert r["bit_flips"] > 0 and r["float_bit_flips"] > 0


@pytest.mark.parametrize("harness", ["direct", "cocotb"])
def test_apt_mode_grows_error_widths_bit_exact_on_verilator(harness, tmp_path):
    # A threshold of 1/64 fails often: both layers' errors grow from 4 bits during the run,
    # and every step's tensors are checked by their CRCs against the golden model's.
    config, _ = _sweep_config("2x3_7-5-3_ternary")
    config = config.replace(bits="2-8-8-4", apt=True, apt_threshold=(1, 64))
    data = _data(tmp_path, config.layers[0], config.layers[-1])
    r = run_engine(config, data=data, steps=6, float_baseline=False, progress=False,
                   harness=harness)
    assert r["bit_exact"] and r["rtl_steps"] == 6 and r["harness"] == harness
    assert r["checks"]["crc_tensors"] >= 6 * 6   # W1, W2, E1, E2, OUT, P of every step
    assert r["apt_events"] and all(w > 4 for w in r["apt_widths"][-1])


#: Convolution networks: name -> (layers, rows, cols, batch_size, steps). Kernels 1, 3 and 5,
#: c_in = 1 and > 1, conv into conv and conv into fully connected layers, with and without
#: max-pools, batch 1 and more.
CONV_SWEEP = {
    "2x3_k3_cin1": ("1x4x4,3C3,4", 2, 3, 2, 3),
    "2x2_k1_cin2_batch1": ("2x3x3,3C1,2", 2, 2, 1, 3),
    "3x2_k5_k3_conv_conv": ("1x5x5,2C5,3C3,3", 3, 2, 2, 3),
    "2x2_k3_deep": ("2x4x3,4C3,2C3,5,3", 2, 2, 3, 2),
    # max-pools: into the classifier, and into a convolution that is pooled again
    "2x4_k3_pool_fc": ("1x4x6,3C3,MP2,4", 2, 4, 2, 3),
    "3x3_pool_conv_pool": ("2x4x4,3C3,MP2,4C1,MP2,3", 3, 3, 2, 2),
}


def _conv_config(name):
    layers, rows, cols, batch, steps = CONV_SWEEP[name]
    return Config(layers=layers, array_rows=rows, array_cols=cols, batch_size=batch,
                  rng_lanes=rows + 1, lr_schedule=((0, -2),), epochs=1, seed=len(name)), steps


@pytest.mark.parametrize("name", sorted(CONV_SWEEP))
def test_conv_training_steps_are_bit_exact_on_verilator(name, tmp_path):
    # Every step's tensors by CRC, and every tensor read back and compared after every step.
    config, steps = _conv_config(name)
    data = _data(tmp_path, config.n_inputs, config.layers[-1])
    r = run_engine(config, data=data, steps=steps, float_baseline=False, progress=False,
                   check_every=1)
    assert r["bit_exact"] and r["steps"] == r["rtl_steps"] == steps
    assert r["checks"]["readback_tensors"] == steps * (2 * len(config.plan) + 2)


@pytest.mark.parametrize("harness", ["direct", "cocotb"])
def test_engine_without_phase_counters_is_bit_exact_and_counts_totals(harness, tmp_path):
    """``phase_counters = false`` (the iCEBreaker's conv build): no per-phase ports, every step
    still checked, the total counters still the cycle model's, and no phases reported."""
    from intrain.hdl.engine import EngineGeometry

    config = Config(layers="1x4x4,2C3,3", array_rows=1, array_cols=1, batch_size=1,
                    rng_lanes=1, acc_bits=21, lr_schedule=((0, -2),), epochs=1,
                    phase_counters=False)
    data = _data(tmp_path, config.n_inputs, config.layers[-1])
    r = run_engine(config, data=data, steps=3, float_baseline=False, progress=False,
                   check_every=1, harness=harness)
    assert r["bit_exact"] and r["rtl_steps"] == 3
    assert r["checks"]["readback_tensors"] == 3 * (2 * len(config.plan) + 2)
    assert r["cycles"] == 3 * EngineGeometry(config).train_cycles(1)
    assert r["phases"] == {}


@pytest.mark.skipif(not HAVE_ICARUS, reason=NO_ICARUS)
def test_conv_training_steps_are_bit_exact_on_icarus(tmp_path):
    config, _ = _conv_config("2x4_k3_pool_fc")
    data = _data(tmp_path, config.n_inputs, config.layers[-1])
    r = run_engine(config, data=data, sim="icarus", steps=2, float_baseline=False,
                   progress=False, check_every=1)
    assert r["bit_exact"] and r["rtl_steps"] == 2 and r["sim"] == "icarus"


def test_direct_harness_refuses_icarus_and_waveforms():
    with pytest.raises(ConfigError, match="direct harness runs Verilator without waveforms"):
        run_engine(Config(), sim="icarus", harness="direct", progress=False)
    with pytest.raises(ConfigError, match="harness must be auto, direct or cocotb"):
        run_engine(Config(), harness="fast", progress=False)


@pytest.mark.skipif(not HAVE_ICARUS, reason=NO_ICARUS)
def test_training_steps_are_bit_exact_on_icarus(tmp_path):
    # The first layer's gradient recomputed, the second's stored: both update paths.
    config, _ = _sweep_config("2x3_7-5-3_ternary")
    config = config.replace(recompute_gradients=(1,))
    data = _data(tmp_path, config.layers[0], config.layers[-1])
    r = run_engine(config, data=data, sim="icarus", steps=3, float_baseline=False,
                   progress=False)
    assert r["bit_exact"] and r["rtl_steps"] == 3 and r["sim"] == "icarus"


def test_default_network_trains_20_steps_bit_exact_on_the_digits():
    r = run_engine(Config(epochs=1), steps=20, float_baseline=False, progress=False)
    assert r["bit_exact"] and r["rtl_steps"] == 20 and r["samples_trained"] == 20 * 64
    # The engine's own counters: a training step of the default network keeps the array busy.
    assert r["mac_utilization"] >= 0.80


def test_single_port_weights_refuse_a_last_batch_of_one(tmp_path):
    config, _ = _sweep_config("1x1_9-5-3_spram")
    data = _data(tmp_path, config.layers[0], config.layers[-1], n=121)
    with pytest.raises(ConfigError, match="last batch of 1 .* need 2 or more"):
        run_engine(config, data=data, steps=40, float_baseline=False, progress=False)


def test_mnist_size_network_in_spram_trains_bit_exact(tmp_path):
    """The iCEBreaker's 784-32-10 build (bench/configs/ice40-784-32-10.toml): its input and
    first weights in single-port RAM, its first gradient recomputed; two steps of random
    784-feature inputs checked against the golden model."""
    from pathlib import Path

    config = Config.load(Path(__file__).parents[1] / "bench" / "configs" /
                         "ice40-784-32-10.toml").replace(epochs=1)
    data = _data(tmp_path, 784, 10, n=32, seed=1)
    r = run_engine(config, data=data, steps=2, float_baseline=False, progress=False,
                   check_every=1)
    assert r["bit_exact"] and r["rtl_steps"] == 2


@pytest.mark.slow
def test_default_network_trains_a_full_epoch_bit_exact_on_the_digits():
    r = run_engine(Config(epochs=1), float_baseline=True, progress=False)
    assert r["bit_exact"] and r["samples_trained"] == r["n_train"] == 1442
    assert r["test_accuracy"] > 0.8


# -- the check can fail -------------------------------------------------------------------------

@pytest.mark.parametrize("harness", ["direct", "cocotb"])
def test_a_corrupted_weight_is_reported_with_step_phase_tensor_and_index(harness, tmp_path):
    # Between steps 2 and 3 the testbench changes one stored weight behind the golden model's
    # back: step 3 must fail and say where.
    config, _ = _sweep_config("2x3_7-5-3_ternary")
    data = _data(tmp_path, config.layers[0], config.layers[-1])
    with pytest.raises(SimulationFailed) as e:
        run_engine(config, data=data, steps=4, float_baseline=False, progress=False,
                   corrupt={"after_step": 2, "layer": 2, "row": 1, "col": 3}, harness=harness)
    message = str(e.value)
    assert message.startswith("RTL and golden model differ: step 3, phase ")
    assert "expected" in message and " is " in message and "[" in message


def test_rtl_backend_rejects_a_waveform_format_the_simulator_cannot_write():
    with pytest.raises(ConfigError, match="icarus writes .fst waveforms, not w.vcd"):
        run_engine(Config(), sim="icarus", waves="w.vcd", progress=False)


# -- the command line ---------------------------------------------------------------------------

def test_intrain_train_backend_rtl_writes_the_report_and_waveform(tmp_path, capsys):
    data = _data(tmp_path, 6, 3, n=40)
    report, waves = tmp_path / "r.json", tmp_path / "run.vcd"
    code = main(["train", "--backend", "rtl", "--data", data, "--layers", "6,5,3",
                 "--array", "2x2", "--batch-size", "4", "--epochs", "1", "--steps", "3",
                 "--report", str(report), "--waves", str(waves), "-q"])
    assert code == 0
    r = json.loads(report.read_text())
    for key in ("test_accuracy", "float_test_accuracy", "train_seconds", "samples_per_second",
                "epochs", "config", "cycles", "mac_utilization", "bit_exact",
                "sim_samples_per_second"):
        assert key in r, key
    assert r["bit_exact"] is True and r["steps"] == 3 and r["backend"] == "rtl"
    assert waves.stat().st_size > 1000
    out = capsys.readouterr().out
    assert "steps bit-exact with golden" in out and "MAC utilization" in out
