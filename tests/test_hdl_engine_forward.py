# amaranth: UnusedElaboratable=no
"""Engine: the forward pass of whole networks against ``GoldenModel.forward``, every element of
``OUT`` and of every hidden activation, with weights and inputs loaded and results read through
the host ports, and the cycle and MAC counters against the engine's own formulas."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.back import verilog
from engine_helpers import (
    COLUMN,
    ROW,
    A,
    P,
    W,
    random_inputs,
    random_weights,
    read_matrix,
    read_slices,
    run_forward,
    simulate,
    write_matrix,
)

from intrain.config import Config
from intrain.golden import matmul
from intrain.golden.model import GoldenModel, init_weights
from intrain.hdl.engine import Engine
from intrain.sim.amaranth_host import AmaranthTransport


def golden_activations(config, weights, a0):
    """``[A_1, ..., A_{L-1}, OUT]`` of a fresh golden model."""
    out = GoldenModel(config, weights).forward(a0)
    trace = GoldenModel(config, weights).train_step(
        a0, np.zeros(len(a0), dtype=np.int64), 0, record=True).trace
    n = len(config.plan)
    acts = [trace[f"A{layer}"] for layer in range(1, n)] + [out]
    assert np.array_equal(trace["out"], out)
    return acts


def expected_cycles(config, batch):
    """Busy cycles from the array's golden schedule (input always valid, output always ready):
    the memories' read latency ``rl`` plus 1 from the first read to the array, the last row out
    of the array, the cycle that writes it, 2 more for QA in hidden layers; then the argmax pass
    (its reads and ``rl``); each job one more for its switch (its end registered)."""
    rows, cols, lanes = config.array_rows, config.array_cols, max(config.array_rows,
                                                                  config.array_cols)
    # Registered requests, and with more than one lane every bank's address registered too.
    rl = 3 + (lanes > 1) if Engine.REGISTERED_MEMORIES else 2
    total = 0
    for p in config.plan:
        tiles = -(-p.n_out // rows) * -(-batch // cols)
        _, out = matmul.systolic_schedule([p.n_in] * tiles, rows, cols)
        # With more than one lane, the array's result rows go through one more register.
        total += rl + 1 + out[-1][-1] + (lanes > 1) + 1 + (0 if p.last else 2) + 1
    return total + -(-batch // lanes) * config.layers[-1] + rl + 1


# -- forward passes against the golden model -----------------------------------------------------
CASES = {
    # name: (layers, bits, array rows, cols, batch_size, weights, batches)
    "7-5-3_2x3_ternary": ((7, 5, 3), "2-8-8-8", 2, 3, 5, "init", (5, 2)),
    "10-9-4-3_3x2_int8": ((10, 9, 4, 3), "8-8-8-8", 3, 2, 5, "random", (1, 5)),
    "10-9-4-3_4x4_ternary": ((10, 9, 4, 3), "2-8-8-8", 4, 4, 5, "random", (5, 3)),
    "7-5-3_4x4_int8_short_k": ((7, 3, 2), "8-8-8-8", 4, 4, 5, "random", (4, 5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_pass_matches_golden_in_every_element(name):
    layers, bits, rows, cols, batch_size, init, batches = CASES[name]
    config = Config(layers=layers, bits=bits, array_rows=rows, array_cols=cols,
                    batch_size=batch_size, seed=len(name))
    rng = np.random.default_rng(len(name))
    weights = init_weights(config) if init == "init" else random_weights(config, rng)
    inputs = [random_inputs(config, rng, b) for b in batches]
    dut = Engine(config)
    n = len(config.plan)
    runs = []

    async def testbench(ctx):
        stalls = random.Random(1)
        for layer, w in enumerate(weights, start=1):
            await write_matrix(ctx, dut, W, layer, w, stalls)
        for layer, w in enumerate(weights, start=1):
            got = await read_matrix(ctx, dut, W, layer, *w.shape, stalls)
            assert np.array_equal(got, w), f"W{layer} read back"
        for a0 in inputs:   # back to back, the weights loaded once
            await write_matrix(ctx, dut, A, 0, a0)
            cycles, macs = await run_forward(ctx, dut, len(a0))
            acts = [await read_matrix(ctx, dut, A, layer, len(a0), config.layers[layer], stalls)
                    for layer in range(1, n + 1)]
            pred = await read_matrix(ctx, dut, P, 0, len(a0), 1, stalls)
            runs.append((a0, cycles, macs, acts, pred[:, 0]))

    simulate(dut, testbench)
    for a0, cycles, macs, acts, pred in runs:
        want = golden_activations(config, weights, a0)
        for layer, (got, exp) in enumerate(zip(acts, want, strict=True), start=1):
            assert np.array_equal(got, exp), f"layer {layer}, batch {len(a0)}"
        assert np.array_equal(pred, GoldenModel(config, weights).predict(a0))
        assert cycles == dut.forward_cycles(len(a0)) == expected_cycles(config, len(a0))
        assert macs == dut.forward_macs(len(a0))
        assert dut.useful_macs(len(a0)) <= macs <= cycles * rows * cols


def forward_once(dut, weights, a0):
    """Load ``weights`` and ``a0``, run one forward pass and read back ``counters``, ``hidden``
    (``A_1``), ``out`` and ``pred``."""
    batch, config = len(a0), dut.config
    result = {}

    async def testbench(ctx):
        for layer, w in enumerate(weights, start=1):
            await write_matrix(ctx, dut, W, layer, w)
        await write_matrix(ctx, dut, A, 0, a0)
        result["counters"] = await run_forward(ctx, dut, batch)
        result["hidden"] = await read_matrix(ctx, dut, A, 1, batch, config.layers[1])
        result["out"] = await read_matrix(ctx, dut, A, 2, batch, config.layers[2])
        result["pred"] = await read_matrix(ctx, dut, P, 0, batch, 1)

    simulate(dut, testbench)
    return result


def test_medium_network_runs_at_the_predicted_rate():
    config = Config(layers=(48, 24, 10), bits="2-8-8-8", array_rows=4, array_cols=4,
                    batch_size=8, seed=3)
    rng = np.random.default_rng(3)
    weights = init_weights(config)
    a0 = random_inputs(config, rng, 8)
    dut = Engine(config)
    result = forward_once(dut, weights, a0)
    hidden, out = golden_activations(config, weights, a0)
    assert np.array_equal(result["hidden"], hidden)
    assert np.array_equal(result["out"], out)
    cycles, macs = result["counters"]
    # No stalls (n_in >= max(R, C)): sum over layers of N_l + R + C + rl + 1 (rl: the memories'
    # read latency), plus 2 per hidden layer, plus the argmax pass: 2 blocks of 4 samples x 10
    # classes + rl; every job one more for its switch.
    rl = 4 if Engine.REGISTERED_MEMORIES else 2   # 4 lanes: the address stage too
    beats = [6 * 2 * 48, 3 * 2 * 24]
    # 4 lanes: the result rows through one more register (+ 1 per layer).
    assert cycles == dut.forward_cycles(8) == sum(b + 4 + 4 + rl + 2 + 1 for b in beats) + 2 \
        + 20 + rl + 1
    assert macs == dut.forward_macs(8) == 16 * sum(beats)
    assert macs / (16 * cycles) > 0.92  # 720 beats of 777 cycles


def test_extremes_saturate_qa_and_ties_predict_the_first_class():
    """Every input and weight at its extreme: QA saturates at a_max; OUT ties between classes
    1 and 3 predict class 1, an all-zero row of OUT class 0."""
    config = Config(layers=(9, 5, 4), bits="8-8-8-8", array_rows=2, array_cols=2, batch_size=3)
    p = config.plan
    weights = [np.full((q.n_out, q.n_in), q.w_max) for q in p]
    weights[0][1] = -p[0].w_max           # neuron 1 of layer 1: all negative, ReLU -> 0
    weights[1][0] = -p[1].w_max
    weights[1][2] = -p[1].w_max
    a0 = np.array([[127] * 9, [-127] * 9, [0] * 9])
    dut = Engine(config)
    result = forward_once(dut, weights, a0)
    hidden, out = golden_activations(config, weights, a0)
    assert np.array_equal(result["hidden"], hidden)
    assert np.array_equal(result["out"], out)
    assert hidden.max() == p[0].a_max and hidden[0, 1] == 0
    assert out[0, 1] == out[0, 3] > 0 > out[0, 0] and out[1, 1] == out[1, 3] > 0
    assert not out[2].any()
    assert list(result["pred"][:, 0]) == [1, 1, 0]


# -- host interface --------------------------------------------------------------------------
def test_host_reads_columns_and_invalid_addresses_as_zeros():
    config = Config(layers=(6, 5, 3), array_rows=2, array_cols=3, batch_size=4)
    rng = np.random.default_rng(7)
    w1 = random_weights(config, rng)[0]
    dut = Engine(config)
    lanes = dut.lanes

    async def testbench(ctx):
        await write_matrix(ctx, dut, W, 1, w1)
        # A write outside the matrix, or to a layer that does not exist, changes nothing.
        for target, layer, row, col in ((W, 1, 5, 0), (W, 0, 0, 0), (W, 1, 0, 6), (A, 3, 0, 0)):
            ctx.set(dut.host_write.payload, {
                "target": target, "layer": layer, "mode": ROW, "row": row, "col": col,
                "data": [99] * lanes, "mask": (1 << lanes) - 1})
            ctx.set(dut.host_write.valid, 1)
            await ctx.tick()
        ctx.set(dut.host_write.valid, 0)
        got = await read_slices(ctx, dut, [
            {"target": W, "layer": 1, "mode": COLUMN, "row": 3, "col": 2},
            {"target": W, "layer": 0, "mode": ROW, "row": 0, "col": 0},
            {"target": W, "layer": 1, "mode": ROW, "row": 5, "col": 0},
            {"target": W, "layer": 1, "mode": ROW, "row": 4, "col": 3},
        ])
        assert got[0] == [int(w1[3, 2]), int(w1[4, 2]), 0]
        assert got[1] == [0] * lanes
        assert got[2] == [0] * lanes
        assert got[3] == [int(v) for v in w1[4, 3:6]]
        assert np.array_equal(await read_matrix(ctx, dut, W, 1, 5, 6), w1)

    simulate(dut, testbench)


def test_host_ports_wait_while_busy_and_done_pulses_once():
    config = Config(layers=(6, 4, 3), array_rows=2, array_cols=2, batch_size=4)
    dut = Engine(config)
    seen = {}

    async def testbench(ctx):
        ctx.set(dut.batch, 4)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        busy_cycles, done_cycles = 0, 0
        for _ in range(dut.forward_cycles(4) + 10):
            _, _, busy, done, w_ready, r_ready = await ctx.tick().sample(
                dut.busy, dut.done, dut.host_write.ready, dut.host_read.ready)
            busy_cycles += busy
            done_cycles += done
            assert w_ready == (not busy) and r_ready == (not busy)
        seen.update(busy=busy_cycles, done=done_cycles, cycles=ctx.get(dut.cycles))

    simulate(dut, testbench)
    assert seen == {"busy": dut.forward_cycles(4), "done": 1, "cycles": dut.forward_cycles(4)}


def test_batch_outside_the_range_is_clamped():
    config = Config(layers=(4, 3, 2), array_rows=2, array_cols=2, batch_size=3)
    dut = Engine(config)
    seen = []

    async def testbench(ctx):
        # The host driver refuses batch 0: drive the ports directly.
        for batch in (0, 3):
            c = await AmaranthTransport(ctx, dut).run(batch, False, 0)
            seen.append((c["cycles"], c["mac_cycles"]))

    simulate(dut, testbench)
    assert seen == [(dut.forward_cycles(1), dut.forward_macs(1)),
                    (dut.forward_cycles(3), dut.forward_macs(3))]


# -- construction ---------------------------------------------------------------------------
def test_shapes_and_widths_come_from_the_config():
    config = Config(layers=(6, 5, 3), bits="2-8-8-8", array_rows=2, array_cols=3, batch_size=4)
    dut = Engine(config)
    assert dut.lanes == 3
    assert [s.width for s in dut.weight_shapes] == [8, 8]
    assert [(s.width, s.signed) for s in dut.activation_shapes] == [
        (8, True), (7, False), (32, True)]
    assert dut.host_width == 32
    assert dut.prediction_shape.width == 2
    assert dut.tiles(4) == [3 * 2, 2 * 2]
    assert dut.forward_macs(4) == 6 * (6 * 6 + 4 * 5)
    assert dut.forward_cycles(4) == expected_cycles(config, 4)
    assert dut.useful_macs(3) == 3 * (30 + 15)


@pytest.mark.parametrize(("arg", "exc", "match"), [
    ((6, 5, 3), TypeError, "Configuration must be a Config"),
    (None, TypeError, "Configuration must be a Config"),
])
def test_constructor_rejects_a_non_config(arg, exc, match):
    with pytest.raises(exc, match=match):
        Engine(arg)


@pytest.mark.parametrize("batch", [0, 5, 2.0, True])
def test_cycle_formulas_reject_an_invalid_batch(batch):
    dut = Engine(Config(layers=(6, 5, 3), array_rows=2, array_cols=2, batch_size=4))
    with pytest.raises(ValueError, match="Batch must be an integer from 1 to 4"):
        dut.forward_cycles(batch)


def test_converts_to_verilog():
    config = Config(layers=(6, 5, 3), array_rows=2, array_cols=3, batch_size=4)
    text = verilog.convert(Engine(config), name="engine")
    assert "module engine" in text
    for port in ("start", "busy", "done", "cycles", "mac_cycles", "host_write__payload",
                 "host_read__payload", "host_read_data__payload"):
        assert port in text
